"""Goal, project, milestone, search, rebuild and conflicts commands."""

from __future__ import annotations

import typer

from mo_local.app import commands as c
from mo_local.app.queries import ListGoals, ListProjects, Search
from mo_local.cli import render
from mo_local.cli.context import Context, UsageError, current
from mo_local.client import Client

EXPECT = typer.Option(None, "--expect-version", help="Fail with exit 5 unless this is the version.")
IDEMPOTENCY = typer.Option(
    None, "--idempotency-key", help="Retry-safe key: the same key and command run at most once."
)


def _goal_out(ctx: Context, client: Client, goal_id: str) -> None:
    goal = client.goal(goal_id).to_json()
    ctx.emit(goal, render.goal_detail(goal))


def _project_out(ctx: Context, client: Client, project_id: str) -> None:
    project = client.project(project_id).to_json()
    ctx.emit(project, render.project_detail(project))


def register(app: typer.Typer) -> None:
    """Add the domain commands to `mo`."""
    goal = typer.Typer(help="Goals on the balanced wheel.", no_args_is_help=True)
    project = typer.Typer(help="Projects, optionally linked to a goal.", no_args_is_help=True)
    milestone = typer.Typer(help="Milestones of a project.", no_args_is_help=True)
    app.add_typer(goal, name="goal")
    app.add_typer(project, name="project")
    app.add_typer(milestone, name="milestone")

    # -- goals ------------------------------------------------------------------

    @goal.command("add")
    def goal_add(
        typer_ctx: typer.Context,
        summary: str,
        slice: str = typer.Option(..., "--slice"),
        priority: str = typer.Option(..., "--priority"),
        month: str = typer.Option(..., "--month"),
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Add a goal."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        result = client.execute(
            c.CreateGoal(
                **client.command_base(None, idempotency_key, client.new_id()),
                summary=summary,
                slice=slice,
                priority=priority,
                target_month=month,
            )
        )
        ctx.emit(
            {"id": result.aggregate_id, "version": result.version},
            f"Added goal {result.aggregate_id}",
        )

    @goal.command("list")
    def goal_list(
        typer_ctx: typer.Context,
        slice: str | None = typer.Option(None, "--slice"),
        priority: str | None = typer.Option(None, "--priority"),
        month: str | None = typer.Option(None, "--month"),
        all: bool = typer.Option(False, "--all", help="Include archived goals."),
    ) -> None:
        """List goals (archived hidden unless --all)."""
        ctx = current(typer_ctx)
        goals = [
            g.to_json()
            for g in ctx.unlocked().list_goals(
                ListGoals(slice=slice, priority=priority, month=month, include_archived=all)
            )
        ]
        ctx.emit(goals, render.goal_rows(goals))

    @goal.command("show")
    def goal_show(typer_ctx: typer.Context, goal_id: str) -> None:
        """Show one goal."""
        ctx = current(typer_ctx)
        _goal_out(ctx, ctx.unlocked(), goal_id)

    @goal.command("edit")
    def goal_edit(
        typer_ctx: typer.Context,
        goal_id: str,
        summary: str | None = typer.Option(None, "--summary"),
        slice: str | None = typer.Option(None, "--slice"),
        priority: str | None = typer.Option(None, "--priority"),
        month: str | None = typer.Option(None, "--month"),
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Change a goal's summary, slice, priority or month."""
        ctx = current(typer_ctx)
        if summary is None and slice is None and priority is None and month is None:
            raise UsageError("nothing to change: give --summary, --slice, --priority or --month")
        client = ctx.unlocked()
        client.execute(
            c.EditGoal(
                **client.command_base(expect_version, idempotency_key, goal_id),
                summary=summary,
                slice=slice,
                priority=priority,
                target_month=month,
            )
        )
        _goal_out(ctx, client, goal_id)

    def _goal_simple(name: str, kind: type[c.GoalCommand], doc: str) -> None:
        def run(
            typer_ctx: typer.Context,
            goal_id: str,
            expect_version: int | None = EXPECT,
            idempotency_key: str | None = IDEMPOTENCY,
        ) -> None:
            ctx = current(typer_ctx)
            client = ctx.unlocked()
            client.execute(kind(**client.command_base(expect_version, idempotency_key, goal_id)))
            _goal_out(ctx, client, goal_id)

        run.__doc__ = doc
        goal.command(name)(run)

    _goal_simple("achieve", c.AchieveGoal, "Mark a goal achieved.")
    _goal_simple("unachieve", c.UnachieveGoal, "Mark an achieved goal as not achieved.")
    _goal_simple("archive", c.ArchiveGoal, "Archive a goal (repeating it changes nothing).")

    # -- projects ---------------------------------------------------------------

    @project.command("add")
    def project_add(
        typer_ctx: typer.Context,
        name: str,
        start: str = typer.Option(..., "--start"),
        target: str = typer.Option(..., "--target"),
        description: str = typer.Option("", "--description"),
        goal_id: str | None = typer.Option(None, "--goal"),
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Add a project, optionally linked to a goal."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        result = client.execute(
            c.CreateProject(
                **client.command_base(None, idempotency_key, client.new_id()),
                name=name,
                start_date=start,
                target_date=target,
                description=description,
                goal_id=goal_id,
            )
        )
        ctx.emit(
            {"id": result.aggregate_id, "version": result.version},
            f"Added project {result.aggregate_id}",
        )

    @project.command("list")
    def project_list(
        typer_ctx: typer.Context,
        goal_id: str | None = typer.Option(None, "--goal"),
        unlinked: bool = typer.Option(False, "--unlinked"),
        status: str | None = typer.Option(None, "--status"),
        all: bool = typer.Option(False, "--all", help="Include archived projects."),
    ) -> None:
        """List projects (archived hidden unless --all)."""
        ctx = current(typer_ctx)
        if goal_id is not None and unlinked:
            raise UsageError("--goal and --unlinked exclude each other")
        projects = [
            p.to_json()
            for p in ctx.unlocked().list_projects(
                ListProjects(
                    goal_id=goal_id, unlinked=unlinked, status=status, include_archived=all
                )
            )
        ]
        ctx.emit(projects, render.project_rows(projects))

    @project.command("show")
    def project_show(typer_ctx: typer.Context, project_id: str) -> None:
        """Show one project with its milestones."""
        ctx = current(typer_ctx)
        _project_out(ctx, ctx.unlocked(), project_id)

    @project.command("edit")
    def project_edit(
        typer_ctx: typer.Context,
        project_id: str,
        name: str | None = typer.Option(None, "--name"),
        description: str | None = typer.Option(None, "--description"),
        start: str | None = typer.Option(None, "--start"),
        target: str | None = typer.Option(None, "--target"),
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Rename, describe or reschedule a project (--start and --target go together)."""
        ctx = current(typer_ctx)
        if (start is None) != (target is None):
            raise UsageError("--start and --target go together")
        if name is None and description is None and start is None:
            raise UsageError("nothing to change: give --name, --description or --start/--target")
        client = ctx.unlocked()
        client.execute(
            c.EditProject(
                **client.command_base(expect_version, idempotency_key, project_id),
                name=name,
                description=description,
                start_date=start,
                target_date=target,
            )
        )
        _project_out(ctx, client, project_id)

    @project.command("status")
    def project_status(
        typer_ctx: typer.Context,
        project_id: str,
        status: str,
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Move a project to planned, in_progress, completed or canceled."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.execute(
            c.TransitionProjectStatus(
                **client.command_base(expect_version, idempotency_key, project_id), status=status
            )
        )
        _project_out(ctx, client, project_id)

    @project.command("link")
    def project_link(
        typer_ctx: typer.Context,
        project_id: str,
        goal_id: str,
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Link a project to a goal (moves it when already linked)."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.execute(
            c.LinkProjectToGoal(
                **client.command_base(expect_version, idempotency_key, project_id), goal_id=goal_id
            )
        )
        _project_out(ctx, client, project_id)

    def _project_simple(name: str, kind: type[c.ProjectCommand], doc: str) -> None:
        def run(
            typer_ctx: typer.Context,
            project_id: str,
            expect_version: int | None = EXPECT,
            idempotency_key: str | None = IDEMPOTENCY,
        ) -> None:
            ctx = current(typer_ctx)
            client = ctx.unlocked()
            client.execute(kind(**client.command_base(expect_version, idempotency_key, project_id)))
            _project_out(ctx, client, project_id)

        run.__doc__ = doc
        project.command(name)(run)

    _project_simple("unlink", c.UnlinkProject, "Unlink a project from its goal.")
    _project_simple(
        "archive", c.ArchiveProject, "Archive a project (repeating it changes nothing)."
    )

    # -- milestones -------------------------------------------------------------

    @milestone.command("add")
    def milestone_add(
        typer_ctx: typer.Context,
        project_id: str,
        name: str,
        date: str = typer.Option(..., "--date"),
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Add a milestone dated within the project's dates."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        result = client.execute(
            c.AddMilestone(
                **client.command_base(expect_version, idempotency_key, project_id),
                name=name,
                target_date=date,
            )
        )
        ctx.emit(
            {"id": result.created_id, "project_id": project_id},
            f"Added milestone {result.created_id}",
        )

    @milestone.command("rename")
    def milestone_rename(
        typer_ctx: typer.Context,
        project_id: str,
        milestone_id: str,
        name: str,
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Rename a milestone."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.execute(
            c.RenameMilestone(
                **client.command_base(expect_version, idempotency_key, project_id),
                milestone_id=milestone_id,
                name=name,
            )
        )
        _project_out(ctx, client, project_id)

    @milestone.command("move")
    def milestone_move(
        typer_ctx: typer.Context,
        project_id: str,
        milestone_id: str,
        date: str = typer.Option(..., "--date"),
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Move a milestone to another date within the project's dates."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.execute(
            c.RescheduleMilestone(
                **client.command_base(expect_version, idempotency_key, project_id),
                milestone_id=milestone_id,
                target_date=date,
            )
        )
        _project_out(ctx, client, project_id)

    @milestone.command("archive")
    def milestone_archive(
        typer_ctx: typer.Context,
        project_id: str,
        milestone_id: str,
        expect_version: int | None = EXPECT,
        idempotency_key: str | None = IDEMPOTENCY,
    ) -> None:
        """Archive a milestone."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.execute(
            c.ArchiveMilestone(
                **client.command_base(expect_version, idempotency_key, project_id),
                milestone_id=milestone_id,
            )
        )
        _project_out(ctx, client, project_id)

    # -- search, rebuild, conflicts --------------------------------------------

    @app.command()
    def search(
        typer_ctx: typer.Context,
        text: str,
        goals: bool = typer.Option(False, "--goals", help="Only goals."),
        projects: bool = typer.Option(False, "--projects", help="Only projects."),
    ) -> None:
        """Search goal summaries and project names and descriptions."""
        ctx = current(typer_ctx)
        # Search validates the text (1–200 characters after trimming) before any unlock.
        query = Search(text=text, goals=goals or not projects, projects=projects or not goals)
        found_goals, found_projects = ctx.unlocked().search(query.text, query.goals, query.projects)
        doc = {
            "goals": [g.to_json() for g in found_goals],
            "projects": [p.to_json() for p in found_projects],
        }
        ctx.emit(doc, render.goal_rows(doc["goals"]) + render.project_rows(doc["projects"]))

    @app.command()
    def rebuild(typer_ctx: typer.Context) -> None:
        """Drop derived state and replay the log."""
        ctx = current(typer_ctx)
        events = ctx.unlocked().rebuild()
        ctx.emit({"events": events}, f"Rebuilt derived state from {events} events.")

    @app.command()
    def conflicts(typer_ctx: typer.Context) -> None:
        """Events skipped because they were invalid at their place in the merged history."""
        ctx = current(typer_ctx)
        rows = ctx.unlocked().conflicts()
        ctx.emit(
            rows,
            render.table(
                "Conflicts",
                ["at", "aggregate", "event", "reason"],
                [[r["at"], r["aggregate_id"], r["event_id"], r["reason"]] for r in rows],
            ),
        )
