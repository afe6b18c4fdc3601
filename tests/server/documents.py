"""Flag documents the server tests share."""

from __future__ import annotations

from typing import Any


def boolean_flag(
    percentage: float = 10, *, enabled: bool = True, env: str = "production"
) -> dict[str, Any]:
    return {
        "description": "New checkout flow",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            env: {
                "enabled": enabled,
                "rules": [
                    {
                        "name": "staff",
                        "when": [
                            {"attribute": "email", "op": "ends_with", "values": ["@example.com"]}
                        ],
                        "serve": {"variant": "on"},
                    }
                ],
                "fallthrough": {
                    "rollout": {"percentage": percentage, "variants": {"on": 100}},
                    "otherwise": "off",
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """One flag of each JSON type, a segment, two environments."""
    return {
        "flags": {
            "new-checkout": boolean_flag(10),
            "button-color": {
                "variants": {"blue": "#1f6feb", "green": "#2da44e"},
                "off_variant": "blue",
                "environments": {
                    "production": {"enabled": True, "fallthrough": {"variant": "green"}},
                    "staging": {"enabled": True, "fallthrough": {"variant": "blue"}},
                },
            },
            "page-size": {
                "variants": {"small": 10, "large": 50},
                "off_variant": "small",
                "environments": {
                    "production": {
                        "enabled": True,
                        "rules": [
                            {
                                "name": "beta",
                                "segment": "beta-testers",
                                "serve": {"variant": "large"},
                            }
                        ],
                        "fallthrough": {"variant": "small"},
                    }
                },
            },
            "ratio": {
                "variants": {"low": 0.25, "high": 0.75},
                "off_variant": "low",
                "environments": {
                    "production": {"enabled": True, "fallthrough": {"variant": "high"}}
                },
            },
            "theme": {
                "variants": {
                    "light": {"bg": "white", "fg": "black"},
                    "dark": {"bg": "black", "fg": "white"},
                },
                "off_variant": "light",
                "environments": {
                    "production": {"enabled": True, "fallthrough": {"variant": "dark"}}
                },
            },
        },
        "segments": {
            "beta-testers": {
                "include": ["user-1", "user-2"],
                "exclude": ["user-9"],
                "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
            },
        },
    }
