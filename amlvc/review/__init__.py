"""Change records, the semantic diff, the three-way merge and the git drivers."""
