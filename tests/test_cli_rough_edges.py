"""What a new user hits first: Ctrl-C, a broken model file, a negative seed, --help."""

import ast
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_idx_dir

from cortex_ep import io
from cortex_ep.cli.main import _parser, main
from cortex_ep.learning import checkpoint

TINY_MODEL = '''
from cortex_ep.model.spec import layered

TRAINING = {"epochs": 2, "batch_size": 5, "free_steps": 15, "nudged_steps": 3}


def network():
    return layered([16, 8, 10], (0.2, 0.1), name="tiny16")
'''


@pytest.fixture
def idx_dir(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    return make_idx_dir(d)


def _exit_code_and_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def test_ctrl_c_names_the_last_epoch_and_the_resume_command(tmp_path, idx_dir):
    model = tmp_path / "tiny16.py"
    model.write_text(TINY_MODEL)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cortex_ep.cli", "train", "--model", str(model), "--data",
         str(idx_dir), "--engine", "numpy", "--epochs", "100000", "--out", str(out),
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / checkpoint.FILENAME).exists():  # at least one finished epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    match = re.fullmatch(r"cortex-ep: interrupted; epoch (\d+) was the last to finish and "
                         r"its checkpoint is intact; continue with: "
                         r"cortex-ep train --resume (\S+)\n", stderr)
    assert match, stderr
    assert Path(match.group(2)) == out
    ck = checkpoint.load(out)  # intact: it loads, and it is the epoch named
    assert ck.epoch == int(match.group(1)) >= 1
    assert io.read_dataset(out / "history.nc").sizes["epoch"] >= ck.epoch


BROKEN_MODELS = {
    "syntax": ("def network(:\n    pass\n", 1, "SyntaxError"),
    "raises on import": ("import math\n\nVALUE = 1 / 0\n\ndef network():\n    pass\n", 3,
                         "ZeroDivisionError: division by zero"),
    "network raises": ("def network():\n    sizes = [16, 8]\n    return sizes[5]\n", 3,
                       "IndexError: list index out of range"),
    "wrong type": ("def network():\n    return [16, 8, 10]\n", 1,
                   "returned list [16, 8, 10], not a cortex_ep Network"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_MODELS))
@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_a_broken_model_file_names_its_file_line_and_error(tmp_path, capsys, kind, command):
    source, line, error = BROKEN_MODELS[kind]
    model = tmp_path / "broken.py"
    model.write_text(source)
    out = tmp_path / "run"
    code, err = _exit_code_and_error([command, "--model", str(model), "--out", str(out)],
                                     capsys)
    assert code == 2
    assert str(model) in err and f"line {line}" in err and error in err, err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_a_negative_seed_is_refused_clearly(tmp_path, capsys, command):
    out = tmp_path / "run"
    code, err = _exit_code_and_error([command, "--seed", "-1", "--out", str(out)], capsys)
    assert code == 2
    assert "argument --seed: -1 is negative; a seed is an integer >= 0" in err, err
    assert not out.exists()


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        for sub in (getattr(action, "choices", None) or {}).values() \
                if hasattr(getattr(action, "choices", None), "values") else ():
            yield from _all_parsers(sub)


def test_help_texts_are_plain_text():
    parsers = list(_all_parsers(_parser()))
    assert len(parsers) >= 3  # the command and its subcommands
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text and not re.search(r":(func|mod|class):`", text), text


def test_every_option_names_its_default_once_and_never_none():
    for parser in _all_parsers(_parser()):
        for action in parser._actions:
            if not action.option_strings or action.help is None:
                continue
            line = " ".join(parser._get_formatter()._expand_help(action).split())
            assert "None" not in line, (action.option_strings, line)
            assert line.count("default") <= 1, (action.option_strings, line)


def test_train_help_shows_every_option_with_a_text():
    train = next(p for p in _all_parsers(_parser()) if p.prog.endswith(" train"))
    bare = [a.option_strings for a in train._actions if a.option_strings and not a.help]
    assert not bare, bare


def test_the_backprop_baseline_does_not_import_the_training_loop():
    # train.py makes the baseline's engines; the baseline owns its own choices
    root = Path(__file__).resolve().parents[1] / "cortex_ep"
    tree = ast.parse((root / "engines" / "twin" / "backprop.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.endswith(("train", "loop"))}
    assert "BP_ACTIVATIONS" not in (root / "learning" / "loop.py").read_text()
    from cortex_ep.engines.twin import backprop, backprop_options

    assert tuple(backprop.FF_ACTIVATIONS) == backprop_options.BP_ACTIVATIONS
