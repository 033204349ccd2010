"""Build the compiled tree-search kernels; all other metadata lives in pyproject.toml."""

import numpy
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spacy_hs._tree_search",
            ["spacy_hs/_tree_search.pyx"],
            include_dirs=[numpy.get_include()],
            extra_compile_args=["-O3"],
        )
    ]
)
