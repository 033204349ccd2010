"""Build the compiled kernels; all other metadata lives in pyproject.toml.

Every module includes spacy_hs/_hs_kernels.h (declared in spacy_hs/_hs_math.pxd): the tree
inference kernels and the heads' training kernels share its math.
"""

import numpy
from setuptools import Extension, setup

KERNEL_HEADERS = ["spacy_hs/_hs_kernels.h", "spacy_hs/_hs_math.pxd", "spacy_hs/_head_train.h"]


def kernel(name: str, **options) -> Extension:
    return Extension(
        f"spacy_hs.{name}",
        [f"spacy_hs/{name}.pyx"],
        include_dirs=[numpy.get_include(), "spacy_hs"],
        depends=KERNEL_HEADERS,
        extra_compile_args=["-O3"],
        **options,
    )


setup(ext_modules=[kernel("_tree_search"), kernel("_head_train"), kernel("_recurrent")])
