"""The docs tell the truth: the config reference is what the code says, every job command the
docs show uses flags the job has, every link leads somewhere, and nothing points outside the
repository."""

import re
import subprocess
from pathlib import Path

from tests.jobs import job_flags

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
JOB_CALL = re.compile(r"jobs/(\w+)\.py\b(.*)")


def commands(text: str) -> list[str]:
    """Job command lines in code blocks and inline code, continuation lines joined."""
    blocks = re.findall(r"```(?:bash|sh|cron|text)?\n(.*?)```", text, flags=re.S)
    found = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        found += [line for line in joined.splitlines() if "jobs/" in line]
    found += [span for span in re.findall(r"`([^`\n]+)`", text) if re.search(r"jobs/\w+\.py", span)]
    return found


def test_the_config_reference_is_generated_from_the_code():
    from swinls.config_reference import reference

    assert (ROOT / "docs" / "config.md").read_text() == reference(), \
        "docs/config.md is stale: python -m swinls.config_reference > docs/config.md"


def test_every_job_command_in_the_docs_uses_flags_the_job_has():
    checked = 0
    for page in PAGES:
        for line in commands(page.read_text()):
            for job, rest in JOB_CALL.findall(line):
                if not (ROOT / "jobs" / f"{job}.py").exists():
                    raise AssertionError(f"{page.name}: jobs/{job}.py does not exist: {line}")
                rest = rest.split("#", 1)[0].split("&&", 1)[0].split("|", 1)[0].split(">>", 1)[0]
                for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest):
                    assert flag in job_flags(job) or flag == "--help", f"{page.relative_to(ROOT)}: jobs/{job}.py has no {flag}: {line}"
                    checked += 1
    assert checked > 50  # the docs do show commands


def test_every_link_between_the_pages_leads_to_a_file():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_nothing_in_the_repository_points_outside_it():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outside_folder = "/".join(("..", "shared"))  # the team's notes beside the checkout, which users do not have
    outside = [name for name in files if (ROOT / name).is_file() and name != "tests/test_docs.py"
               and outside_folder in (ROOT / name).read_text(errors="ignore")]
    assert outside == []


def test_the_search_space_page_names_every_key_the_loader_accepts():
    import dataclasses

    from swinls.search.space import DRIVER_CPUS, RUN_RESOURCES, Budget, ParameterSpec, SamplerSpec, SchedulerSpec, SpaceFile

    page = (ROOT / "docs" / "search-spaces.md").read_text().split("## Keys", 1)[1]
    keys = [f.name for f in dataclasses.fields(SpaceFile)]
    for section, cls in (("budget", Budget), ("scheduler", SchedulerSpec), ("sampler", SamplerSpec)):
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    keys += [f"resources.{name}" for name in (*RUN_RESOURCES, DRIVER_CPUS)]
    keys += [f".{f.name}" for f in dataclasses.fields(ParameterSpec)]
    missing = [key for key in keys if f"`{key}`" not in page and f"`{key}." not in page
               and f"`parameters.<config key>{key}`" not in page]
    assert missing == []


def test_the_readme_is_a_start_not_a_notebook():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert 80 <= len(lines) <= 200
