"""Installation script for spIsoNet."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION: dict[str, str] = {}
exec((HERE / "spIsoNet" / "_version.py").read_text(), VERSION)

setup(
    name="spIsoNet",
    version=VERSION["__version__"],
    description=(
        "Correct preferred-orientation anisotropy in single-particle cryo-EM maps "
        "(3DFSC, self-supervised 3D U-Net, RELION external-reconstruct plugin)."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["spIsoNet", "spIsoNet.*"]),
    package_data={"spIsoNet": ["data/*"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.0,<3",
        "numpy>=1.22",
        "scipy>=1.8",
        "mrcfile>=1.4",
        "starfile>=0.5",
        "tqdm>=4.60",
        "matplotlib>=3.5",
    ],
    extras_require={"test": ["pytest>=7", "ruff>=0.4"]},
    entry_points={
        "console_scripts": [
            "spisonet.py=spIsoNet.cli.main:main",
            "spisonet=spIsoNet.cli.main:main",
            "spisonet-relion=spIsoNet.relion.wrapper:main",
        ]
    },
    scripts=[],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
    ],
)
