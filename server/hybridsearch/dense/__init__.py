"""Dense arm: inner-product top-k over the vector matrix."""
