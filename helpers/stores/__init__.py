"""Stage 05: the two stores. `milvus_client` and `milvus` (the movie vectors in Milvus), `milvus_index` (the index by
size), `sql` and `catalog` (the SQL catalog), `build` (build_stores, verify_stores, the record)."""
