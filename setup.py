"""Package list for setuptools (metadata lives in pyproject.toml): every subpackage of scoremed/ is
found automatically; operators/ and configs/ are installed as scoremed.operators and scoremed.configs."""
from setuptools import find_packages, setup

MAPPED = {"scoremed.operators": "operators", "scoremed.configs": "configs"}
packages = find_packages(include=["scoremed", "scoremed.*"])
for name, folder in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir={"scoremed": "scoremed", **MAPPED})
