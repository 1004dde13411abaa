"""``scoremed tune``: bad choices of the classical / calibration modes are one error line naming the flag."""
from __future__ import annotations

import pytest

from scoremed.cli.common import run_cli
from scoremed.cli.tune import main


@pytest.mark.parametrize("argv, message", [
    (["--classical", "ct", "--size", "3"], "error: --size: expected 'native' or a square image size >= 8, got '3'"),
    (["--classical", "ct", "--calibrate"], "error: --calibrate: give --classical or --calibrate, not both"),
    (["--classical", "ct", "--baselines", "bm3d"],
     "error: baseline: task 'ct' has baselines ['tv', 'sart', 'pnp-bm3d'], got 'bm3d'"),
    (["--classical", "mri", "--size", "16", "--baselines", "tv", "--images", "1", "--test-images", "1"],
     "error: --baselines: no stored mri entry at 16x16 to keep the other baselines of; tune all baselines first"),
])
def test_bad_tune_modes_are_one_error_line(argv, message, capsys):
    assert run_cli(main, argv) == 2
    assert capsys.readouterr().err.strip() == message
