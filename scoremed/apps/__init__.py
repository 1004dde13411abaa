"""The jobs the command line runs, with typed options and no argparse.

- :mod:`.reconstruct`: one image or a whole volume / k-space file (:class:`.options.ReconstructOptions`);
- :mod:`.compare`: direct, classical and scoremed reconstructions side by side; :mod:`.metrics`: PSNR / SSIM;
- :mod:`.slices`: volume <-> prior-sized 2D slices (orientation, intensity window, size), invertible;
- :mod:`.kspace`: measured k-space onto the prior's grid; :mod:`.stack`: slices in batches, over processes;
- :mod:`.volumes`: volume and k-space file jobs and their outputs; :mod:`.figures`, :mod:`.samples`: files.
"""
