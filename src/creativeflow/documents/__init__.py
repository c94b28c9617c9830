"""What generated documents share (story exports now, brand reports later): the bundled font."""
