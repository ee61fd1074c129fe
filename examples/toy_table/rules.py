"""The ``valid`` hook of the toy table space (``conf/experiment/toy_table.yaml``).

Hooks get the architecture as a dict ``{gene name: choice}``; extra config keys arrive as
keyword arguments (here ``max_pools``).
"""

OPS = ("op1", "op2", "op3", "op4")


def valid(arch: dict, max_pools: int = 2) -> bool:
    """At most ``max_pools`` of the four ops are pooling layers (the table has no others)."""
    return sum(arch[g] == "pool" for g in OPS) <= max_pools
