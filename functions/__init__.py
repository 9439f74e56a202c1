"""Thin function blueprints: parse the trigger input, call shared/, map errors."""
