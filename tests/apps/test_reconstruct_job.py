"""The reconstruction job asks its task, not the task's name: measured data only for the tasks that read
them, NIfTI outputs for medical tasks and PNG for natural images."""
from __future__ import annotations

import pytest
import torch

from scoremed.apps.compare import MethodResult
from scoremed.apps.options import ReconstructOptions
from scoremed.apps.reconstruct import SliceOutputs, check_measured_data
from scoremed.errors import InputError
from scoremed.tasks import TASKS


@pytest.mark.parametrize("op", list(TASKS))
def test_measured_data_only_with_the_task_that_reads_them(op):
    for name, reader in (("kspace", "mri"), ("sinogram", "ct")):
        options = ReconstructOptions(op=op, **{name: "data.file"})
        if op == reader:
            check_measured_data(options, TASKS[op])
        else:
            with pytest.raises(InputError, match=f"^{name}: only with op {reader}, got op {op}$"):
                check_measured_data(options, TASKS[op])


@pytest.mark.parametrize("op, written", [("mri", "reconstruction.nii.gz"), ("ct", "reconstruction.nii.gz"),
                                         ("inpaint", "reconstruction.png"), ("colorize", "reconstruction.png")])
def test_medical_tasks_write_nifti_and_the_others_png(tmp_path, op, written):
    channels = 3 if op in ("inpaint", "colorize") else 1
    image = torch.rand(1, channels, 8, 8)
    results = {name: MethodResult(name, image, 0.1) for name in ("direct", "scoremed")}
    SliceOutputs(op, results, None, None).write(tmp_path)
    assert (tmp_path / written).is_file() and (tmp_path / "figure.png").is_file()
    assert not (tmp_path / ("reconstruction.png" if written.endswith(".gz") else "reconstruction.nii.gz")).exists()
