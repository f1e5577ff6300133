"""The four services of the 1022 mesh. None imports another; they share only ``contracts``."""
