"""Stores: the SQL store (SQLite, PostgreSQL) and its in-memory twin."""
