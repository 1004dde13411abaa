"""Reading and writing images, volumes and measured data (NIfTI, DICOM, HDF5, PNG/JPG, .npy).

- :mod:`.images`: single 2D images (PNG/JPG/TIFF, .npy) in and out;
- :mod:`.volumes`, :mod:`.dicom`: NIfTI volumes and DICOM series in, NIfTI and derived DICOM series out;
- :mod:`.slices`: volume <-> prior-sized 2D slices (orientation, intensity window, size), invertible;
- :mod:`.kspace`: fastMRI HDF5 k-space onto the prior's grid, coil maps;
- :mod:`.slicewise`, :mod:`.volume_jobs`: batched slice-by-slice reconstruction behind ``reconstruct.py``;
"""
