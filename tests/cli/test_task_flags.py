"""``scoremed reconstruct``'s task flags: one flag per option name, the chosen task's own defaults for the
flags not given (also for a name several tasks share, with different defaults), the help listing each
task's default, and a flag of another task refused naming the flag and ``--op``'s task (exit 2)."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from scoremed.cli import reconstruct
from scoremed.cli.common import run_cli
from scoremed.cli.reconstruct import SHARED, add_task_arguments, parser, task_fields, task_options
from scoremed.errors import InputError
from scoremed.tasks import TASKS
from scoremed.tasks.base import Task, option


@dataclasses.dataclass
class DenoiseOptions:
    noise: float = option(0.1, "noise level")
    size: int = option(64, "patch size")
    seed: int = option(0, "seed")


@dataclasses.dataclass
class DeblurOptions:
    noise: float = option(0.01, "noise level")
    size: int = option(64, "kernel size")
    kernel: str = option("gauss", "gauss | box")


def _task(name: str, options: type) -> Task:
    return Task(name=name, summary=f"{name} test task", options=options, build=lambda shape, o: None, baselines=(),
                kinds=(name,), default_prior="none")


#: two tasks sharing the option names ``noise`` (different defaults) and ``size`` (the same default)
FAKE = {task.name: task for task in (_task("denoise", DenoiseOptions), _task("deblur", DeblurOptions))}


def _fake_parser(tasks=FAKE) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--op")
    p.add_argument("--seed", type=int, default=0)
    add_task_arguments(p, tasks)
    return p


@pytest.mark.parametrize("name", list(TASKS))
def test_no_task_flags_give_each_shipped_task_its_own_defaults(name):
    assert task_options(TASKS[name], parser().parse_args(["--op", name])) == TASKS[name].options()


def test_shared_options_have_the_flags_default_in_every_task():
    p = parser()
    for task in TASKS.values():
        for f in dataclasses.fields(task.options):
            if f.name in SHARED:
                assert f.default == p.get_default(f.name), (task.name, f.name)


@pytest.mark.parametrize("name", list(FAKE))
def test_a_shared_option_name_keeps_each_tasks_default(name):
    p = _fake_parser()
    assert task_options(FAKE[name], p.parse_args(["--op", name]), FAKE) == FAKE[name].options()
    given = task_options(FAKE[name], p.parse_args(["--op", name, "--noise", "0.5", "--seed", "3"]), FAKE)
    assert given == dataclasses.replace(FAKE[name].options(), noise=0.5, **({"seed": 3} if name == "denoise" else {}))


def test_the_help_lists_each_tasks_default_where_they_differ():
    helps = {a.dest: a.help for a in _fake_parser()._actions}
    assert helps["noise"] == "noise level (default: denoise 0.1, deblur 0.01)"
    assert helps["size"] == "patch size (denoise, deblur; default 64)"
    assert helps["kernel"] == "gauss | box (default gauss)"
    assert set(task_fields(FAKE)) == {"noise", "size", "kernel"}          # seed: the shared --seed


def test_a_flag_of_another_task_is_refused_naming_the_flag_and_the_task():
    args = _fake_parser().parse_args(["--op", "denoise", "--kernel", "box"])
    with pytest.raises(InputError, match=r"^--kernel: not an option of --op denoise \(it belongs to deblur\); "
                                         r"the options of denoise: --noise, --size$"):
        task_options(FAKE["denoise"], args, FAKE)


def test_the_command_exits_2_on_a_flag_of_another_task(capsys):
    assert run_cli(reconstruct.main, ["--op", "ct", "--accel", "2"]) == 2
    assert capsys.readouterr().err == ("error: --accel: not an option of --op ct (it belongs to mri); "
                                       "the options of ct: --views\n")
    assert run_cli(reconstruct.main, ["--op", "colorize", "--mask-kind", "random"]) == 2
    assert capsys.readouterr().err.endswith("(it belongs to inpaint); the options of colorize: none\n")


def test_one_flag_needs_one_type_across_tasks():
    @dataclasses.dataclass
    class Other:
        size: float = option(1.5, "size")

    with pytest.raises(TypeError, match=r"task option 'size': tasks \['denoise', 'other'\] give it different types"):
        _fake_parser({"denoise": FAKE["denoise"], "other": _task("other", Other)})
