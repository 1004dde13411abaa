"""Readers and writers only: NIfTI (:mod:`.nifti`), DICOM series (:mod:`.dicom`), fastMRI HDF5 k-space
(:mod:`.fastmri`), 2D images (:mod:`.images`), volumes from either (:mod:`.volumes`), a volume's
display slices and back (:mod:`.slices`), prior and checkpoint files (:mod:`.checkpoint`), and atomic
writes (:mod:`.atomic`). Readers name the argument they were given in their errors."""
