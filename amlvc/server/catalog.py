"""Stored experiments of the local workspace: rows of leaves and run-history snapshots (no HTTP here)."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    workspace TEXT NOT NULL, id TEXT NOT NULL, guid TEXT NOT NULL, is_leaf INTEGER NOT NULL,
    doc TEXT NOT NULL, etag TEXT NOT NULL, run_step INTEGER NOT NULL DEFAULT 0, run_outcome TEXT,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (workspace, id));
CREATE INDEX IF NOT EXISTS experiments_guid ON experiments (workspace, guid, is_leaf);
CREATE TABLE IF NOT EXISTS assets (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, family TEXT NOT NULL, batch INTEGER NOT NULL,
    name TEXT, doc TEXT NOT NULL, blob_key TEXT, created_ms INTEGER NOT NULL, PRIMARY KEY (workspace, kind, id));
CREATE INDEX IF NOT EXISTS assets_family ON assets (workspace, kind, family, batch);
CREATE TABLE IF NOT EXISTS uploads (
    workspace TEXT NOT NULL, id TEXT NOT NULL, data_type_id TEXT NOT NULL, blocks INTEGER NOT NULL DEFAULT 0,
    committed INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, PRIMARY KEY (workspace, id))
"""
