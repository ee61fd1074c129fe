"""Search spaces: genes, genotypes, strings, canonical forms and network builders."""

from renas.space.base import Gene, SearchSpace
from renas.space.genes import GenesGenotype, GenesSpace
from renas.space.nasbench201 import NASBench201Space, NB201Genotype
from renas.space.renas_cell import CellGenotype, RenasCellSpace

SPACES = {"renas_cell": RenasCellSpace, "nasbench201": NASBench201Space, "genes": GenesSpace}

__all__ = [
    "Gene",
    "SearchSpace",
    "RenasCellSpace",
    "CellGenotype",
    "NASBench201Space",
    "NB201Genotype",
    "GenesSpace",
    "GenesGenotype",
    "SPACES",
]
