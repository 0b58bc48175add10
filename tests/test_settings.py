"""Settings as a deployment gives them: the secret key, the production checks, the database URL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

PRODUCTION = {  # deploy/mediasite.env.example, as README "Deploying" says to fill it in
    "DJANGO_SECRET_KEY": "x7Qm2-production-like-key-with-fifty-or-more-characters-9fK3pZ",
    "DJANGO_ALLOWED_HOSTS": "media.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://media.example.com",
    "DJANGO_HTTPS": "1",
    "DATABASE_URL": "postgres://mediasite:secret@127.0.0.1:5432/mediasite",
    "TRANSFORMS_SIGNING": "required",
}


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, capture_output=True, text=True,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "mediasite.settings", **env}, timeout=60)


@pytest.mark.parametrize("key", ["", "insecure-development-key-change-me"])
def test_debug_off_refuses_a_missing_or_development_key(tmp_path, key):
    result = manage({"DJANGO_SECRET_KEY": key, "DJANGO_SECRET_KEY_FILE": str(tmp_path / "none")}, "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert manage({"DJANGO_SECRET_KEY": key, "DJANGO_SECRET_KEY_FILE": str(tmp_path / "none"),
                   "DJANGO_DEBUG": "1"}, "check").returncode == 0  # a laptop with DEBUG on still starts


def test_the_key_file_is_read(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("k" * 20 + "from-a-file" + "z" * 30 + "\n")
    result = manage({"DJANGO_SECRET_KEY_FILE": str(key_file)}, "shell", "--no-imports", "-c",
                    "from django.conf import settings; print(settings.SECRET_KEY)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key_file.read_text().strip()


def test_check_deploy_reports_only_what_the_readme_explains():
    result = manage(PRODUCTION, "check", "--deploy")
    reported = {line.split(")", 1)[0].split("(")[-1] for line in result.stderr.splitlines() if "(security." in line}
    assert reported <= {"security.W005", "security.W021"}, result.stderr  # HSTS for subdomains and preload: opt-in
    readme = (PROJECT / "README.md").read_text()
    assert all(code in readme for code in reported)


def test_database_url_selects_postgresql():
    result = manage(PRODUCTION, "shell", "--no-imports", "-c",
                    "from django.conf import settings; d = settings.DATABASES['default']; "
                    "print(d['ENGINE'], d['NAME'], d['USER'], d['HOST'], d['PORT'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "mediasite", "mediasite", "127.0.0.1", "5432"]
