"""Publishing to and pulling from a Hub, with the genuine huggingface_hub client, unpatched.

Every server is started here, on 127.0.0.1: ``tests/hub_server.py`` (a loopback Hub written for
these tests, which takes uploads) and olah (a Hub mirror written by others, serving a git
repository offline), so the download side is also checked against a server nobody here wrote.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and its cache paths when it is imported, and
so does this package its namespace, so each push or pull runs in a fresh Python process with the
environment set. HF_HUB_DISABLE_XET=1 is set there too: the installed client would otherwise
upload LFS files over the Xet protocol, a separate storage service that cannot be served from
a test; with it off the client speaks the plain LFS batch protocol the loopback Hub implements.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from allconv_zoo.hub import (
    MissingRunFileError,
    RunFolderError,
    load_results,
    regenerate_model_cards,
    save_model_folder,
    stage_repo_folder,
)
from allconv_zoo.models import CIFAR10_LABELS, describe_architecture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import LoopbackHub

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "zoo-test"
# The round trip uses the cheapest network that has a pretrained config: a third of All-CNN-C's
# multiply-accumulates, which matters for a training step on two shared CPU cores.
ARCH = "strided_cnn_c"
WRITE_TOKEN, READ_TOKEN = "hf_test_write", "hf_test_read"


# -- run folders ---------------------------------------------------------------------------


def _tiny_png() -> bytes:
    """A valid 1x1 PNG, so that tests need no plotting library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def make_run_folder_by_hand(out: Path, arch: str = ARCH, seed: int = 0) -> Path:
    """A run folder like the train recipe's, from a model given a few SGD steps on noise.

    Used where a trained network is not the point (cards, errors, other architectures).
    """
    torch.manual_seed(seed)
    model = timm.create_model(arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):
        loss = model(torch.randn(8, 3, 32, 32)).logsumexp(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    save_model_folder(model, out, label_names=CIFAR10_LABELS)
    results = {
        "arch": arch,
        "tag": "cifar10",
        "dataset": "cifar10",
        "data_source": "random noise made by the tests",
        "data_notes": "Not CIFAR-10 at all: Gaussian noise.",
        "num_classes": 10,
        "label_names": list(CIFAR10_LABELS),
        "test_accuracy": 10.37,
        "epochs": 1,
        "schedule": "fast",
        "hyperparameters": {"lr": 0.01, "wd": 0.0, "bs": 8, "epochs": 1, "seed": seed},
        "wall_time_s": 0.5,
        "images_per_second": 32.0,
        "versions": {"torch": torch.__version__, "timm": timm.__version__},
        "machine": "test machine",
        "parameters": sum(p.numel() for p in model.parameters()),
        "macs": 123_456_789,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "history.csv").write_text("epoch,train_loss,valid_loss,accuracy,time,train_accuracy\n")
    (out / "curves.png").write_bytes(_tiny_png())
    return out


def make_trained_run(out: Path) -> Path:
    """A tiny run through the zoo's own learner (one epoch on 64 random 10-class images)."""
    from allconv_zoo.data import CifarData
    from allconv_zoo.learner import RunConfig, train_run

    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)
        return images, torch.randint(0, 10, (n,), generator=generator)

    (train_x, train_y), (test_x, test_y) = split(64), split(32)
    data = CifarData(
        name="cifar10",
        classes=tuple(CIFAR10_LABELS),
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        source="random images made by the tests",
        notes=("Random pixels, not CIFAR-10.",),
    )
    config = RunConfig(arch=ARCH, epochs=1, bs=32, device="cpu", precision="fp32")
    train_run(config, data, out)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    try:
        return make_trained_run(out)
    except ImportError:  # the learner's optional dependencies (fastai) are not installed
        return make_run_folder_by_hand(out)


# -- subprocesses --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_env(endpoint: str, home: Path, token: str | None = WRITE_TOKEN, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home),
        HF_HUB_DISABLE_XET="1",  # see the module docstring
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        ALLCONV_HUB_NAMESPACE=NAMESPACE,
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    if token:
        env["HF_TOKEN"] = token
    return env


def run_python(code: str, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return result


def last_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the loopback Hub ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    tokens = {WRITE_TOKEN: ("tester", "write"), READ_TOKEN: ("reader", "read")}
    with LoopbackHub(tokens=tokens, orgs={"tester": [NAMESPACE]}) as server:
        yield server


PUBLISH_TWICE = """
import contextlib, io, json, runpy, sys
from huggingface_hub import HfApi

# The CLI's main, run twice in one process to spare a second start of torch.
main = runpy.run_path(sys.argv[1])["main"]
run_dir, repo_id = sys.argv[2], sys.argv[3]
api = HfApi()
out = {}
for attempt in ("first", "second"):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([run_dir, "--repo-id", repo_id])
    out[attempt] = dict(
        code=code,
        stdout=stdout.getvalue(),
        head=api.model_info(repo_id).sha,
        commits=[c.commit_id for c in api.list_repo_commits(repo_id)],
    )
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def published(hub, run_dir, tmp_path_factory) -> dict:
    """The run published with the CLI, and then again."""
    repo_id = f"{NAMESPACE}/{ARCH}.cifar10"
    env = hub_env(hub.url, tmp_path_factory.mktemp("hf-push"))
    script = str(REPO / "recipes" / "publish.py")
    out = last_json(run_python(PUBLISH_TWICE, env, script, str(run_dir), repo_id))
    return {"repo_id": repo_id, **out}


PULL = """
import json, sys
import timm, torch
from safetensors.torch import load_file

reference = load_file(sys.argv[1])
def same(model):
    state = model.state_dict()
    if set(state) != set(reference):
        return False
    return all(torch.equal(state[k], v) for k, v in reference.items())

x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
expected = timm.create_model("{arch}")
expected.load_state_dict(reference)
expected.eval()
first = timm.create_model("{arch}", pretrained=True).eval()
second = timm.create_model("{arch}", pretrained=True).eval()
by_id = timm.create_model("hf-hub:{namespace}/{arch}.cifar10", pretrained=True).eval()
with torch.no_grad():
    predictions = all(torch.equal(expected(x), m(x)) for m in (first, second, by_id))
print(json.dumps(dict(
    tensors=all(same(m) for m in (first, second, by_id)),
    predictions=predictions,
    file=first.pretrained_cfg.get("hf_hub_id"),
    labels=list(by_id.pretrained_cfg.get("label_names") or []),
)))
"""


@pytest.fixture(scope="module")
def pulled(hub, published, run_dir, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("hf-pull")
    before = {
        "get": hub.count("GET", "/resolve/main/model.safetensors"),
        "head": hub.count("HEAD", "/resolve/main/model.safetensors"),
    }
    code = PULL.replace("{namespace}", NAMESPACE).replace("{arch}", ARCH)
    result = run_python(
        code, hub_env(hub.url, home, token=None), str(run_dir / "model.safetensors")
    )
    after = {
        "get": hub.count("GET", "/resolve/main/model.safetensors"),
        "head": hub.count("HEAD", "/resolve/main/model.safetensors"),
    }
    return {"home": home, "out": last_json(result), "before": before, "after": after}


def test_publish_makes_one_commit_with_the_repo_content(hub, published, run_dir):
    first = published["first"]
    assert first["code"] == 0 and "new commit" in first["stdout"]
    # The initial commit of create_repo, then one commit holding everything.
    assert len(first["commits"]) == 2 and first["commits"][0] == first["head"]
    files = hub.repos[published["repo_id"]].commits[first["head"]].files
    assert set(files) == {
        ".gitattributes",
        "model.safetensors",
        "config.json",
        "README.md",
        "curves.png",
        "results.json",
        "history.csv",
    }
    assert files["model.safetensors"].lfs and files["curves.png"].lfs
    assert files["model.safetensors"].content == (run_dir / "model.safetensors").read_bytes()
    config = json.loads(files["config.json"].content)
    assert config["architecture"] == ARCH and config["num_classes"] == 10
    assert config["label_names"] == list(CIFAR10_LABELS)
    assert {"num_features", "pretrained_cfg"} <= set(config)
    card = ModelCard(files["README.md"].content.decode())
    results = load_results(run_dir)
    assert card.data.eval_results[0].metric_value == results["test_accuracy"]


def test_republishing_the_same_run_makes_no_commit(hub, published):
    first, second = published["first"], published["second"]
    assert second["code"] == 0 and "unchanged, no commit made" in second["stdout"]
    assert second["head"] == first["head"] == hub.head(published["repo_id"])
    assert second["commits"] == first["commits"]
    # The client saw that nothing changed and did not even post a commit.
    assert hub.count("POST", f"/api/models/{published['repo_id']}/commit/") == 1


def test_pretrained_pull_matches_the_run_and_second_call_uses_the_cache(pulled):
    out = pulled["out"]
    assert out["tensors"] and out["predictions"]
    assert out["file"] == f"{NAMESPACE}/{ARCH}.cifar10"
    assert out["labels"] == list(CIFAR10_LABELS)
    # Three loads (by name twice, by hf-hub id once) download the weights once; the others
    # only ask for the ETag and find the blob in the cache.
    assert pulled["after"]["get"] - pulled["before"]["get"] == 1
    assert pulled["after"]["head"] - pulled["before"]["head"] == 3
    blobs = list((pulled["home"] / "hub").glob(f"models--{NAMESPACE}--{ARCH}.cifar10/blobs/*"))
    assert len(blobs) == 2  # model.safetensors and config.json


def test_offline_pull_loads_from_the_cache_without_a_server(pulled, run_dir):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = hub_env(closed, pulled["home"], token=None, HF_HUB_OFFLINE="1")
    code = """
    import json, sys, timm, torch
    from safetensors.torch import load_file
    reference = load_file(sys.argv[1])
    state = timm.create_model("{arch}", pretrained=True).state_dict()
    by_id = timm.create_model("hf-hub:{namespace}/{arch}.cifar10", pretrained=True).state_dict()
    same = all(torch.equal(s[k], v) for s in (state, by_id) for k, v in reference.items())
    print(json.dumps(same))
    """.replace("{namespace}", NAMESPACE).replace("{arch}", ARCH)
    result = run_python(code, env, str(run_dir / "model.safetensors"))
    assert last_json(result) is True


ERRORS = """
import json, sys, timm
from allconv_zoo import PretrainedWeightsError
from allconv_zoo.hub import HubAuthError, publish

publishing = {}
for name, repo_id, token in [
    ("missing", "zoo-test/a", None),
    ("invalid", "zoo-test/b", "hf_not_a_token"),
    ("read_only", "reader/c", "hf_test_read"),
    ("other_namespace", "someone-else/d", "hf_test_write"),
]:
    try:
        publish(sys.argv[1], repo_id, token=token)
        publishing[name] = "published"
    except HubAuthError as err:
        publishing[name] = str(err)

pulling = {}
for name in ["all_cnn_c", "cnn_a", "cnn_b", "cnn_c", "hf-hub:broken/mixed"]:
    try:
        timm.create_model(name, pretrained=True)
        pulling[name] = None
    except PretrainedWeightsError as err:
        pulling[name] = [err.repo_id, str(err)]
print(json.dumps(dict(publishing=publishing, pulling=pulling)))
"""


@pytest.fixture(scope="module")
def errors(hub, run_dir, tmp_path_factory) -> dict:
    """Bad tokens for publishing and broken repos for pulling, tried in one process."""
    tmp = tmp_path_factory.mktemp("errors")
    cnn_c = make_run_folder_by_hand(tmp / "cnn_c", arch="cnn_c")
    weights = (cnn_c / "model.safetensors").read_bytes()
    config = (cnn_c / "config.json").read_bytes()
    hub.seed("broken/cnn_a.cifar10", {"model.safetensors": weights[: len(weights) // 2]})
    hub.seed("broken/cnn_b.cifar10", {"model.safetensors": weights, "config.json": config})
    hub.seed("broken/cnn_c.cifar10", {"README.md": b"no weights here\n"})
    # config.json says all_cnn_c, the weights are cnn_c's.
    mixed = json.loads(config)
    mixed["architecture"] = "all_cnn_c"
    hub.seed(
        "broken/mixed", {"model.safetensors": weights, "config.json": json.dumps(mixed).encode()}
    )
    repos = list(hub.repos)
    writes = [hub.count("POST", route) for route in ("/api/repos/create", "/preupload/")]
    # No HF_TOKEN, and an HF_HOME without a saved login.
    env = hub_env(hub.url, tmp / "hf", token=None, ALLCONV_HUB_NAMESPACE="broken")
    out = last_json(run_python(ERRORS, env, str(run_dir)))
    out["repos_unchanged"] = list(hub.repos) == repos
    out["writes_unchanged"] = writes == [
        hub.count("POST", route) for route in ("/api/repos/create", "/preupload/")
    ]
    return out


def test_publish_refuses_bad_tokens_before_uploading(errors):
    out = errors["publishing"]
    assert "No Hugging Face token found" in out["missing"] and "HF_TOKEN" in out["missing"]
    assert "rejected the token" in out["invalid"]
    assert "read-only" in out["read_only"]
    assert "cannot write to namespace 'someone-else'" in out["other_namespace"]
    # Nothing was created or uploaded.
    assert errors["repos_unchanged"] and errors["writes_unchanged"]


def test_pull_errors_name_the_repo_and_the_fix(errors):
    out = errors["pulling"]
    missing_repo, truncated, other_arch, no_weights, mixed_config = out.values()
    assert missing_repo[0] == "broken/all_cnn_c.cifar10"
    assert "does not exist" in missing_repo[1] and "ALLCONV_HUB_NAMESPACE" in missing_repo[1]
    assert "HF_ENDPOINT" in missing_repo[1] and "pretrained=False" in missing_repo[1]
    assert truncated[0] == "broken/cnn_a.cifar10"
    assert "truncated or corrupted" in truncated[1] and "hf cache delete" in truncated[1]
    assert other_arch[0] == "broken/cnn_b.cifar10" and "do not fit cnn_b " in other_arch[1]
    assert no_weights[0] == "broken/cnn_c.cifar10" and "no model.safetensors" in no_weights[1]
    assert mixed_config[0] == "broken/mixed" and "do not fit all_cnn_c " in mixed_config[1]
    for _, message in out.values():
        assert "pretrained_cfg_overlay=dict(file=" in message


# -- olah ----------------------------------------------------------------------------------


@pytest.fixture
def olah(tmp_path, run_dir):
    """olah serving, offline, a git repository of the run's weights and config."""
    olah_cli = Path(sys.executable).with_name("olah-cli")
    if not olah_cli.exists() or shutil.which("git") is None:
        pytest.skip("olah (pip install olah) and git are needed for the independent server check")
    repo = tmp_path / "mirrors" / "models" / NAMESPACE / f"{ARCH}.cifar10"
    repo.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copyfile(run_dir / name, repo / name)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "weights"], check=True)

    port = free_port()
    # olah's documented layout: <mirrors-path>/<repo type>/<org>/<name> is a git repository it
    # serves instead of proxying; offline = true keeps it from ever contacting huggingface.co.
    (tmp_path / "olah.toml").write_text(
        textwrap.dedent(f"""
        [basic]
        host = "127.0.0.1"
        port = {port}
        repos-path = "{tmp_path / "olah-repos"}"
        mirrors-path = ["{tmp_path / "mirrors"}"]
        mirror-netloc = "127.0.0.1:{port}"
        mirror-lfs-netloc = "127.0.0.1:{port}"

        [accessibility]
        offline = true
        """)
    )
    log = (tmp_path / "olah.out").open("w")
    process = subprocess.Popen(
        [str(olah_cli), "-c", str(tmp_path / "olah.toml"), "--log-path", str(tmp_path / "logs")],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "olah.out").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_pull_through_olah_serving_a_git_repository(olah, run_dir, tmp_path):
    code = """
    import json, sys, timm, torch
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file
    path = hf_hub_download("{namespace}/{arch}.cifar10", "model.safetensors")
    same_bytes = open(path, "rb").read() == open(sys.argv[1], "rb").read()
    reference = load_file(sys.argv[1])
    loaded = [
        timm.create_model("{arch}", pretrained=True).state_dict(),
        timm.create_model("hf-hub:{namespace}/{arch}.cifar10", pretrained=True).state_dict(),
    ]
    same = all(torch.equal(s[k], v) for s in loaded for k, v in reference.items())
    print(json.dumps([same_bytes, same]))
    """.replace("{namespace}", NAMESPACE).replace("{arch}", ARCH)
    env = hub_env(olah, tmp_path / "hf", token=None)
    assert last_json(run_python(code, env, str(run_dir / "model.safetensors"))) == [True, True]


# -- local: folders, dry run, cards --------------------------------------------------------


def test_save_model_folder_replaces_files_whole_and_loads_with_timm(tmp_path, monkeypatch):
    model = timm.create_model("cnn_c").eval()
    labels = [f"class{i}" for i in range(10)]
    path = save_model_folder(model, tmp_path, label_names=labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = timm.create_model(
        "cnn_c", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))
    ).eval()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in load_file(path).items())
    assert json.loads((tmp_path / "config.json").read_text())["label_names"] == labels

    # A save that dies half-way leaves the previous files as they were and no temporary folder.
    before = path.read_bytes()

    def dying_save(model, directory, **kwargs):
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr("allconv_zoo.hub.save_for_hf", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_model_folder(model, tmp_path, label_names=labels)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_missing_run_files_say_what_to_do(tmp_path):
    with pytest.raises(MissingRunFileError, match=r"recipes/train\.py"):
        load_results(tmp_path / "nowhere")
    run = make_run_folder_by_hand(tmp_path / "run", arch="cnn_a")
    (run / "model.safetensors").unlink()
    with pytest.raises(MissingRunFileError, match="--resume"):
        stage_repo_folder(run, tmp_path / "out")


def test_dry_run_refuses_weights_of_another_architecture(tmp_path):
    run = make_run_folder_by_hand(tmp_path / "run", arch="cnn_a")
    shutil.copyfile(
        make_run_folder_by_hand(tmp_path / "other", arch="cnn_b") / "model.safetensors",
        run / "model.safetensors",
    )
    with pytest.raises(RunFolderError, match="does not hold the tensors of cnn_a"):
        stage_repo_folder(run, tmp_path / "out")


def test_dry_run_cli_writes_the_repo_content_only(run_dir, tmp_path, capsys):
    main = runpy.run_path(str(REPO / "recipes" / "publish.py"))["main"]
    out = tmp_path / "dry"
    assert main([str(run_dir), "--repo-id", f"{NAMESPACE}/x", "--dry-run", str(out)]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "README.md",
        "config.json",
        "curves.png",
        "history.csv",
        "model.safetensors",
        "results.json",
    ]
    for name in ("model.safetensors", "results.json", "history.csv", "curves.png"):
        assert (out / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert f"hf-hub:{NAMESPACE}/x" in (out / "README.md").read_text()


def test_a_staged_folder_stages_again_unchanged_in_place_and_elsewhere(run_dir, tmp_path):
    # model_cards/<arch>.<tag>/ is what gets published, so staging it must be a fixed point.
    staged = stage_repo_folder(run_dir, tmp_path / "staged", repo_id=f"{NAMESPACE}/x")
    before = {p.name: p.read_bytes() for p in staged.iterdir()}
    stage_repo_folder(staged, staged, repo_id=f"{NAMESPACE}/x")
    again = stage_repo_folder(staged, tmp_path / "again", repo_id=f"{NAMESPACE}/x")
    assert {p.name: p.read_bytes() for p in staged.iterdir()} == before
    assert {p.name: p.read_bytes() for p in again.iterdir()} == before


def _assert_card_matches(card_path: Path, results: dict) -> None:
    card = ModelCard.load(card_path)
    assert card.data.library_name == "timm" and card.data.pipeline_tag == "image-classification"
    assert {"image-classification", "timm"} <= set(card.data.tags)
    (evaluation,) = card.data.eval_results
    assert evaluation.metric_type == "accuracy"
    assert evaluation.metric_value == results["test_accuracy"]
    assert evaluation.dataset_type.endswith(results["dataset"])
    assert f"**{results['test_accuracy']:.2f}%**" in card.text
    assert f"{results['parameters']:,}" in card.text and f"{results['macs']:,}" in card.text
    assert describe_architecture(results["arch"]) in card.text  # pooled or not, as built
    assert f"{results['epochs']} epoch" in card.text and f"`{results['schedule']}`" in card.text
    if "train_images" in results:
        # The card says how many images were trained on and tested on, so a cut is visible.
        assert f"{results['train_images']:,} training images" in card.text
        assert f"over {results['test_images']:,} test images" in card.text
    # The transfer comparison figure is linked exactly when it sits beside the card.
    has_comparison = (card_path.parent / "comparison.png").is_file()
    assert ("(comparison.png)" in card.text) == has_comparison
    # A bf16 run's card says its accuracy is the fp32 weights'; an fp32 run's has nothing to say.
    bf16_measured_in_fp32 = (
        results["hyperparameters"].get("precision") == "bf16"
        and results.get("test_precision") == "fp32"
    )
    assert ("this accuracy is that of the fp32 weights" in card.text) == bf16_measured_in_fp32
    # A resumed run's card says its wall time spans sessions; an unbroken run's says nothing.
    resumed_at = results.get("resumed_at_epoch")
    assert ("last after epoch" in card.text) == bool(resumed_at)
    if resumed_at:
        assert f"(last after epoch {resumed_at})" in card.text


def _copy_staged_folders(target: Path) -> None:
    for folder in (REPO / "model_cards").glob("*/results.json"):
        shutil.copytree(folder.parent, target / folder.parent.name)


def test_every_model_card_parses_and_matches_its_results(run_dir, tmp_path):
    from allconv_zoo.reference import PAPER_CIFAR10_ACCURACY, REPORT_CIFAR10_ACCURACY

    cards = tmp_path / "cards"
    # The repository's own cards, re-rendered from their results.json, and one from a test run.
    _copy_staged_folders(cards)
    written = regenerate_model_cards(cards, [run_dir])
    assert cards / f"{ARCH}.cifar10" / "README.md" in written
    staged_weights = cards / f"{ARCH}.cifar10" / "model.safetensors"
    assert staged_weights.read_bytes() == (run_dir / "model.safetensors").read_bytes()
    for card_path in written:
        results = load_results(card_path.parent)
        _assert_card_matches(card_path, results)
        text = card_path.read_text()
        if results["dataset"] == "cifar10" and results["arch"] in PAPER_CIFAR10_ACCURACY:
            assert f"| {PAPER_CIFAR10_ACCURACY[results['arch']]:.2f} |" in text
            assert f"| {REPORT_CIFAR10_ACCURACY[results['arch']]:.2f} |" in text
            # A model clearly below the report says so among its limitations.
            short = results["test_accuracy"] < REPORT_CIFAR10_ACCURACY[results["arch"]] - 0.5
            assert ("points below the reproduction report's" in text) == short, card_path
    # The committed cards are what the current template renders. Rendered apart from the test
    # run above, which would replace a staged folder of the same name (ARCH.cifar10).
    committed = tmp_path / "committed"
    _copy_staged_folders(committed)
    regenerate_model_cards(committed, [])
    for folder in (REPO / "model_cards").glob("*/results.json"):
        rendered = (committed / folder.parent.name / "README.md").read_text()
        assert (folder.parent / "README.md").read_text() == rendered, folder.parent.name


def test_card_tells_an_overfit_model_from_an_under_trained_one(tmp_path):
    run = make_run_folder_by_hand(tmp_path / "run", arch="all_cnn_c")
    results = load_results(run)
    results["test_accuracy"] = 80.0  # 9.21 points below the report's 89.21
    (run / "results.json").write_text(json.dumps(results))
    header = "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,time\n"

    def card_with_final_train_accuracy(train_accuracy: float) -> str:
        (run / "history.csv").write_text(header + f"0,0.5,{train_accuracy},0.6,0.8,00:10\n")
        (card,) = regenerate_model_cards(tmp_path / "cards", [run])
        return card.read_text()

    text = card_with_final_train_accuracy(0.95)  # 15 points above the test accuracy
    assert "- Overfit: 9.21 points below the reproduction report's 89.21%" in text
    assert "ended 15.0 points above its test accuracy" in text and "100 epochs" not in text
    text = card_with_final_train_accuracy(0.805)  # level with it: more epochs are the cure
    assert "- Under-trained: 9.21 points below" in text and "The report trained 100 epochs" in text
    assert "Overfit" not in text


def test_bf16_card_says_its_accuracy_is_the_fp32_weights(tmp_path):
    run = make_run_folder_by_hand(tmp_path / "run", arch="cnn_a")
    results = load_results(run)
    results["hyperparameters"]["precision"] = "bf16"
    results["test_precision"] = "fp32"
    (run / "results.json").write_text(json.dumps(results))
    (card,) = regenerate_model_cards(tmp_path / "cards", [run])
    _assert_card_matches(card, results)
    assert "bf16 autocast" in card.read_text()


def test_card_and_results_table_say_which_epochs_ran_on_which_machine(tmp_path):
    from allconv_zoo.tables import staged_results_table

    run = make_run_folder_by_hand(tmp_path / "run", arch="cnn_a")
    results = load_results(run)
    results.update(epochs=3, resumed_at_epoch=2)
    results["sessions"] = [
        dict(first_epoch=1, last_epoch=2, seconds=160.0, machine="CPU fast", precision="bf16"),
        dict(first_epoch=3, last_epoch=3, seconds=700.0, machine="CPU slow", precision="fp32"),
    ]
    (run / "results.json").write_text(json.dumps(results))
    (card,) = regenerate_model_cards(tmp_path / "cards", [run])
    where = "epochs 1-2 on CPU fast (bf16, 80 s/epoch); epochs 3-3 on CPU slow (fp32, 700 s/epoch)"
    assert f"- Machine: {where}; wall time" in card.read_text()
    row = staged_results_table(tmp_path / "cards").splitlines()[2]
    assert row.endswith(f"| bf16+fp32 | {where} |")
    # One machine throughout, as nearly every run: the card names it once.
    results["sessions"][1].update(machine="CPU fast", precision="bf16")
    (run / "results.json").write_text(json.dumps(results))
    (card,) = regenerate_model_cards(tmp_path / "cards", [run])
    assert f"- Machine: {results['machine']}; wall time" in card.read_text()


def test_transfer_card_compares_with_the_report(tmp_path):
    run = make_run_folder_by_hand(tmp_path / "run", arch="all_cnn_c")
    results = load_results(run)
    results.update(tag="cifar100_class1", dataset="cifar100", base_model=f"{NAMESPACE}/x")
    results["scratch_baseline"] = dict(test_accuracy=41.257, epochs=10, run="scratch")
    (run / "results.json").write_text(json.dumps(results))
    (card,) = regenerate_model_cards(tmp_path / "cards", [run])
    _assert_card_matches(card, results)
    text = card.read_text()
    assert "| 83.6 |" in text and "| 73.3 |" in text and "base_model: zoo-test/x" in text
    # What transfer bought here, measured by this recipe, beside the report's two numbers.
    assert "| The same network from scratch, same images and 10 epochs | 41.26 |" in text
    # Its shortfall points at the body it started from, not at Table 1's 100 epochs.
    assert "fine-tuned its own CIFAR-10 All-CNN-C (89.21% in its Table 1)" in text
    assert "this one starts from zoo-test/x" in text and "trained 100 epochs" not in text
    # Without the scratch run's accuracy per epoch there is nothing to draw beside the transfer's.
    assert not (card.parent / "comparison.png").exists()


def test_transfer_card_shows_both_strategies_per_epoch(tmp_path, monkeypatch):
    import allconv_zoo.transfer

    drawn = []
    real_plot_comparison = allconv_zoo.transfer.plot_comparison

    def counting_plot_comparison(*args, **kwargs):
        drawn.append(args[-1])
        return real_plot_comparison(*args, **kwargs)

    monkeypatch.setattr(allconv_zoo.transfer, "plot_comparison", counting_plot_comparison)
    run = make_run_folder_by_hand(tmp_path / "run", arch="all_cnn_c")
    results = load_results(run)
    results.update(tag="cifar100_class2", dataset="cifar100")
    results["scratch_baseline"] = dict(
        test_accuracy=30.0, epochs=2, run="scratch", test_accuracy_per_epoch=[20.0, 30.0]
    )
    (run / "results.json").write_text(json.dumps(results))
    (run / "history.csv").write_text(
        "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,time\n"
        "0,2.0,0.3,1.9,0.35,00:10\n1,1.5,0.45,1.4,0.5,00:10\n"
    )
    (card,) = regenerate_model_cards(tmp_path / "cards", [run])
    figure = card.parent / "comparison.png"
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert drawn == [figure], "staging a run draws its figure once"
    _assert_card_matches(card, results)
    # Re-rendering the staged folder from its own files keeps the figure and the link.
    figure.unlink()
    (card,) = regenerate_model_cards(tmp_path / "cards")
    assert figure.is_file() and "(comparison.png)" in card.read_text()


def test_restaging_a_folder_drops_figures_the_new_run_does_not_have(tmp_path):
    transfer_run = make_run_folder_by_hand(tmp_path / "transfer", arch="all_cnn_c")
    results = load_results(transfer_run)
    results.update(tag="cifar100_class2", dataset="cifar100")
    results["scratch_baseline"] = dict(
        test_accuracy=30.0, epochs=2, run="scratch", test_accuracy_per_epoch=[20.0, 30.0]
    )
    (transfer_run / "results.json").write_text(json.dumps(results))
    (transfer_run / "history.csv").write_text(
        "epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,time\n"
        "0,2.0,0.3,1.9,0.35,00:10\n1,1.5,0.45,1.4,0.5,00:10\n"
    )
    folder = tmp_path / "cards" / "all_cnn_c.cifar100_class2"
    stage_repo_folder(transfer_run, folder)
    assert (folder / "comparison.png").is_file() and (folder / "curves.png").is_file()

    # A rerun of the same repo without a scratch baseline and without curves or history.
    rerun = make_run_folder_by_hand(tmp_path / "rerun", arch="all_cnn_c", seed=1)
    rerun_results = load_results(rerun)
    rerun_results.update(tag="cifar100_class2", dataset="cifar100")
    (rerun / "results.json").write_text(json.dumps(rerun_results))
    (rerun / "curves.png").unlink()
    (rerun / "history.csv").unlink()
    stage_repo_folder(rerun, folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "results.json",
    ]
    _assert_card_matches(folder / "README.md", rerun_results)
