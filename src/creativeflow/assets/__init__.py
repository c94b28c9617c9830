"""Files and images: storage, uploads (streamed, validated, re-encoded), the images table,
thumbnails, provenance, and serving them to who may read them."""
