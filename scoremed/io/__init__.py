"""Reading and writing images, volumes and measured data (NIfTI, DICOM, HDF5, PNG/JPG, .npy)."""
