"""Stats on a tiny hand-built run dir, leakage detection on a planted overlap, CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

from stage_helpers import episode, make_run, scenario

from clca.leakage import check_run, flagged_episode_ids, ngrams, words
from clca.records import CheckpointEntry, Intent, Judgement, LiveEpisode, ScenarioFailure, Turn
from clca.rundir import RunDir
from clca.stats import compute_stats

LEAK = "As the survey asks, how important is family in your life? Would you say it is very important, rather important?"
NEAR_MISS = "So tell me, how important is family in your life, really?"  # 7 shared words only


def build(tmp_path: Path) -> RunDir:
    run = make_run(tmp_path)
    run.failure_store().extend(
        [
            ScenarioFailure(id="china-s3", seed_id="s3", culture="China", model="m", reason="bad json"),
            ScenarioFailure(
                id="china-s2", seed_id="s2", culture="China", model="m", reason="adapted on rerun"
            ),
        ]
    )
    run.scenario_store().append(scenario(culture="Japan", sid="japan-s1"))
    adapted = {"model": "teacher", "prompt_version": "adapt-v2", "adapted_fields": []}
    run.scenario_store().extend(
        [  # a names-only adaptation, a real one, and a record without adapted_fields: only the first counts
            scenario(culture="Japan", sid="japan-s4").model_copy(update=adapted),
            scenario(culture="Japan", sid="japan-s5").model_copy(
                update={**adapted, "adapted_fields": ["setting"]}
            ),
            scenario(culture="Japan", sid="japan-s6").model_copy(update={**adapted, "adapted_fields": None}),
        ]
    )
    leak = episode("japan-s1:0", sid="japan-s1", culture="Japan", texts=[LEAK])
    leak = leak.model_copy(
        update={"stop_reason": "parse_failure", "turns": leak.turns[:1], "parse_failures": 2}
    )
    near = episode("japan-s1:1", sid="japan-s1", culture="Japan", texts=[NEAR_MISS, "Very."])
    running = LiveEpisode(
        id="japan-s1:2",
        scenario_id="japan-s1",
        culture="Japan",
        sample=2,
        seed=2,
        model="m",
        turns=[Turn(speaker=0, name="Li Wei", action="speak", text="Hi")],
    )
    run.episode_store().extend([leak, near])
    run.write_checkpoint({}, [CheckpointEntry(episode=running)])  # in progress: counted as running
    run.judgement_store().extend(
        [
            Judgement(id="china-s1:0", episode_id="china-s1:0", culture="China", model="m", keep=True),
            Judgement(id="china-s2:0", episode_id="china-s2:0", culture="China", model="m", keep=False),
            Judgement(
                id="china-s1:1",
                episode_id="china-s1:1",
                culture="China",
                model="m",
                keep=False,
                error="empty",
            ),
        ]
    )
    run.intent_store().extend(
        [
            Intent(
                id="china-s1:0:0",
                episode_id="china-s1:0",
                culture="China",
                turn_index=0,
                speaker=0,
                name="Li Wei",
                intent="To settle the bill.",
                cultural=False,
            ),
            Intent(
                id="china-s1:0:1",
                episode_id="china-s1:0",
                culture="China",
                turn_index=1,
                speaker=1,
                name="Zhang Min",
                error="no 'INTENT:' line",
            ),
            Intent(
                id="china-s1:0:2",
                episode_id="china-s1:0",
                culture="China",
                turn_index=2,
                speaker=0,
                name="Li Wei",
                intent="To show deference to an elder.",
                cultural=True,
            ),
        ]
    )
    return run


def test_stats_numbers(tmp_path: Path, data_dir: Path) -> None:
    run = build(tmp_path)
    st = compute_stats(run)
    cn, jp = st.cultures["China"], st.cultures["Japan"]
    assert cn.model_dump() == {
        "scenarios": 2,
        "scenario_failures": 1,
        "names_only": 0,
        "episodes": 3,
        "running": 0,
        "stopped_by_parse_failure": 0,
        "unparseable_turns": 0,
        "judged": 3,
        "kept": 1,
        "kept_pct": 33.33,
        "judge_errors": 1,
        "data_from": "kept",
        "final_episodes": 1,
        "avg_turns": 1.5,
        "avg_utterances": 3.0,
        "avg_words_per_utterance": 5.5,
        "avg_words_per_turn": 7.33,
        "intents": 3,
        "intent_errors": 1,
        "cultural_intent_pct": 50.0,
        "leakage_flagged": 0,
    }
    assert (jp.episodes, jp.running, jp.stopped_by_parse_failure, jp.data_from) == (2, 1, 1, "all")
    assert (
        jp.unparseable_turns == 2
        and jp.avg_turns == 0.75
        and jp.avg_utterances == 1.5
        and jp.kept_pct is None
        and jp.leakage_flagged == 1
    )
    assert jp.scenarios == 4 and jp.names_only == 1
    assert st.total.episodes == 5 and st.total.scenarios == 6 and st.total.names_only == 1
    assert st.leakage.flagged_episodes == ["japan-s1:0"]
    assert run.stats() == st
    assert json.loads(run.stats_file.read_text())["cultures"]["China"]["kept"] == 1


def test_leakage_planted_overlap_and_staleness(tmp_path: Path, data_dir: Path) -> None:
    run = build(tmp_path)
    assert flagged_episode_ids(run) == {"japan-s1:0"}
    recs = {r.id: r for r in check_run(run)}
    assert set(recs) == {"china-s1:0", "china-s2:0", "china-s1:1", "japan-s1:0", "japan-s1:1"}
    assert "Q1" in recs["japan-s1:0"].qids
    assert "would you say it is very important rather" in recs["japan-s1:0"].matches
    assert not recs["japan-s1:1"].flagged
    # a shorter n catches the 7-word near miss; the file is recomputed because n changed
    assert "japan-s1:1" in flagged_episode_ids(run, n=7)
    assert all(json.loads(line)["n"] == 7 for line in run.leakage_file.read_text().splitlines())
    # a new episode makes the file stale
    run.episode_store().append(episode("china-s2:1", sid="china-s2", texts=[LEAK]))
    assert flagged_episode_ids(run) == {"japan-s1:0", "china-s2:1"}


def test_ngrams_words() -> None:
    assert words("It's 'Very important', isn\u2019t it?") == ["it's", "very", "important", "isn't", "it"]
    assert ngrams(["a", "b", "c"], 2) == {("a", "b"), ("b", "c")}
    assert ngrams(["a"], 2) == set()


def test_cli_stats_and_errors(tmp_path: Path, data_dir: Path, capsys: object) -> None:
    from clca.cli import main

    run = build(tmp_path)
    assert main(["--data-dir", str(data_dir), "stats", "--run", str(run.path)]) == 0
    assert run.stats_file.exists()
    assert main(["judge", "--run", str(tmp_path / "nowhere"), "--model", "embedded:smollm2-135m"]) == 2
    assert (
        main(
            [
                "scenarios",
                "--run",
                str(tmp_path / "r"),
                "--cultures",
                "Atlantis",
                "--per-culture",
                "1",
                "--model",
                "embedded:smollm2-135m",
            ]
        )
        == 2
    )


def test_cli_stages_with_scripted_backend(tmp_path: Path, data_dir: Path) -> None:
    """The judge/intents commands wire the stage functions to the backend named by --model."""
    from clca.cli import main

    run = make_run(tmp_path)
    assert main(["judge", "--run", str(run.path), "--model", "scripted:auto", "--no-progress"]) == 0
    assert main(["intents", "--run", str(run.path), "--model", "scripted:auto", "--no-progress"]) == 0
    assert (
        len(run.judgements()) == 3 and len(run.intents()) == 8
    )  # 2 kept episodes, 3 utterances and the leave each
    assert all(i.intent for i in run.intents())
