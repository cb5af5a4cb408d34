"""Maps the top-level folders onto the `anyaccel` import package (metadata lives in pyproject.toml)."""

from setuptools import find_packages, setup

ROOTS = {"anyaccel": "core", "anyaccel.platforms": "platforms", "anyaccel.models": "models"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder, exclude=["tests", "tests.*"])]

setup(packages=packages, package_dir=ROOTS, package_data={"anyaccel": ["py.typed"]})
