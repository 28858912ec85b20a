"""The student's feedback page: plots for the behaviour checks, the messages, no solution code; it renders in a browser
and the command line writes it next to results.json."""

import html
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gradekit import plots
from week03_policy_gradients import views

from autograder import feedback
from autograder.grade import grade
from autograder.release import solution_lines
from autograder.results import FIGURE_DATA, gradescope
from tests.conftest import CATALOGUE, fill_release, load_variant

ONLY = {"policy_gradient_update_exact", "bandit_table_learns", "pg_loss_exact", "baseline_reduces_variance",
        "chain_reinforce_learns", "chain_baseline_learns"}
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def pages(assignment, tmp_path_factory):
    """label -> (report, page) for the reference-filled release, the blank release and a buggy submission."""
    folder = tmp_path_factory.mktemp("feedback")
    bug = load_variant(CATALOGUE / "bugs" / "update_sign_flipped.py")[0]
    submissions = {"reference": fill_release(assignment, folder / "r.ipynb"), "blank": assignment.release,
                   "bug": fill_release(assignment, folder / "bug.ipynb", bug)}
    out = {}
    for label, path in submissions.items():
        report = grade(path, assignment, only=ONLY)
        feedback.write(folder / f"{label}.html", report, assignment)
        out[label] = (report, (folder / f"{label}.html").read_text())
    return out


@pytest.mark.parametrize("label, plots, message", [
    ("reference", 3, "<b>Variance ratio with / without the baseline: 0.670"),
    ("blank", 0, "is not implemented yet"),
    ("bug", 3, "Likely mistake: the sign is flipped"),
])
def test_page_shows_plots_and_messages(pages, label, plots, message):
    report, page = pages[label]
    assert page.count("<img ") == plots
    assert page.count("data:image/png;base64,") == plots
    assert message in page
    assert f"{report.score:g} / {report.max_score:g} points" in page
    for result in report.results:
        assert html.escape(result.output) in page, result.name


def test_failed_exactness_check_lists_wrong_cases(pages):
    report, page = pages["bug"]
    wrong = next(r for r in report.results if r.name == "policy_gradient_update_exact").data["wrong"]
    assert "<th>input</th><th>expected</th><th>yours</th><th>what went wrong</th>" in page
    assert all(html.escape(w[k]) in page for w in wrong for k in ("case", "expected", "got", "problem"))
    assert wrong[0]["expected"].startswith("policy [") and wrong[0]["got"].startswith("policy [")


def test_behaviour_figures_are_the_lecture_views(assignment, pages):
    """Bandit: draw_plots' three views (action probabilities, reward per step, total reward per run); chain: return
    and loss per episode without a baseline (chain_reinforce_learns' graded runs) and with the student's baseline
    (chain_baseline_learns' graded runs, against its feedback-only runs without it), yours and the reference's."""
    report, _ = pages["reference"]
    data = {r.name: r.data for r in report.results}
    bandit = data["bandit_table_learns"]["runs"]
    assert all(len(run["probs"]) == 500 and len(run["probs"][0]) == 3 and len(run["rewards"]) == 500 for run in bandit)
    fig = plots.figure(assignment.check("bandit_table_learns"), bandit,
                       feedback.reference_runs(assignment, "bandit_table_learns")["runs"])
    assert [ax.get_xlabel() for ax in fig.axes] == ["Time step", "Time step", "Seed (one run each)"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["Action probability", "Reward", "Total reward"]
    chain = data["chain_reinforce_learns"]
    fig = plots.figure(assignment.check("chain_reinforce_learns"), chain["runs"],
                       feedback.reference_runs(assignment, "chain_reinforce_learns")["runs"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["Episode return", "Episode loss"]
    baselined = data["chain_baseline_learns"]
    assert len(baselined["feedback_runs"]) == 2 and all(len(r["losses"]) == 500 for r in baselined["feedback_runs"])
    assert all("variance_ratio" in r for r in baselined["runs"])
    reference = feedback.reference_runs(assignment, "chain_baseline_learns")
    fig = plots.figure(assignment.check("chain_baseline_learns"), baselined["runs"], reference["runs"],
                       {"runs": baselined["feedback_runs"], "reference": reference["feedback_runs"]})
    assert [ax.get_ylabel() for ax in fig.axes] == ["Episode return", "Episode loss", "Var(G − b) / Var(G)"]
    labels = {t.get_text() for t in fig.axes[1].get_legend().get_texts()}
    assert {"your code", "reference", "your code + baseline", "reference + baseline"} <= labels


def test_seeds_not_run_are_marked_not_drawn_as_zero(assignment):
    """Early stopping skips seeds once the verdict is settled: their bars say "not run", a failed run says "error"."""
    check = assignment.check("bandit_table_learns")
    run = {"probs": [[0.9, 0.05, 0.05]] * 10, "rewards": [1.0] * 10}
    fig = plots.figure(check, [run, None, run], [run] * 5)
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert texts == ["error", "not run", "not run"]
    fig = plots.figure(assignment.check("chain_baseline_learns"),
                       [{"episode_returns": [0.5] * 20, "losses": [0.1] * 20, "variance_ratio": 0.3}] * 4,
                       [{"episode_returns": [0.5] * 20, "losses": [0.1] * 20, "variance_ratio": 0.3}] * 5)
    assert [t.get_text() for t in fig.axes[2].texts] == ["not run"]


def test_results_json_stays_small(pages):
    """The learning curves go into the page, not into results.json."""
    results = gradescope(pages["reference"][0])
    assert not any(key in check for check in results["extra_data"]["checks"].values() for key in FIGURE_DATA)
    assert len(json.dumps(results)) < 20_000


def test_animation_gif(tmp_path):
    """The lecture's animation, written with matplotlib's Pillow writer: one frame per time step."""
    probs = [[0.2 + 0.001 * t, 0.4, 0.4 - 0.001 * t] for t in range(30)]
    views.animation_gif(probs, tmp_path / "a.gif", frames=20)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 20


def test_no_solution_code_in_any_page(assignment, pages):
    solution = [line for line in solution_lines(assignment.source) if len(line) > 12]
    for label, (_, page) in pages.items():
        leaked = [line for line in solution if line in page or html.escape(line) in page]
        assert not leaked, f"{label} page quotes the reference solution: {leaked}"


def test_unreadable_submission_shows_only_its_message(assignment, tmp_path):
    (tmp_path / "empty.ipynb").write_text("")
    page = feedback.render(grade(tmp_path / "empty.ipynb", assignment), assignment)
    assert page.count("The submission file is empty") == 1
    assert page.count("<section") == 1 and "<img" not in page


def test_page_renders_in_a_headless_browser(pages, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium not installed: apt-get install chromium")
    page = tmp_path / "feedback.html"
    page.write_text(pages["bug"][1])
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20, "the screenshot is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100, "too few colours for text and plots"


def test_cli_writes_feedback_next_to_results_unless_no_html(assignment, tmp_path):
    for folder, extra in ((tmp_path / "with", []), (tmp_path / "without", ["--no-html"])):
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(assignment.release), "--check",
                               "pg_loss_exact", "--results", str(folder / "results.json"), *extra],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert (folder / "results.json").exists()
        assert (folder / "feedback.html").exists() == (not extra)
        assert ("feedback: " in proc.stdout) == (not extra)
    assert "is not implemented yet" in (tmp_path / "with" / "feedback.html").read_text()
