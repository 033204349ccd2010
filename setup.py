"""Build the compiled kernels; all other metadata lives in pyproject.toml.

Every module includes spacy_hs/_hs_kernels.h (declared in spacy_hs/_hs_math.pxd): the tree
inference kernels (searches, path scores, hidden vectors; their shared argument checks in
spacy_hs/_tree_checks.pxd), the directional head's training kernels and the recurrent head's
tree loss (_recurrent) share its math.
"""

import numpy
from setuptools import Extension, setup

KERNEL_HEADERS = [
    "spacy_hs/_hs_kernels.h",
    "spacy_hs/_hs_math.pxd",
    "spacy_hs/_tree_checks.pxd",
    "spacy_hs/_head_train.h",
]
KERNELS = ["_search", "_path_scores", "_hidden", "_head_train", "_recurrent"]


def kernel(name: str, **options) -> Extension:
    return Extension(
        f"spacy_hs.{name}",
        [f"spacy_hs/{name}.pyx"],
        include_dirs=[numpy.get_include(), "spacy_hs"],
        depends=KERNEL_HEADERS,
        extra_compile_args=["-O3"],
        **options,
    )


setup(ext_modules=[kernel(name) for name in KERNELS])
