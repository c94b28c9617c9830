"""Files and images: storage, the images table, serving bytes to who may read them."""
