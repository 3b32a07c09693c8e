"""`tfgen publish`: which version of a base path is served (`--list`), rolling back to
the previous one (`--rollback`) and undoing that (`--restore`). Wiring only; the file
operations are `tfgen.publish.rollback`'s. Fine-tuned versions are published by
`tfgen train --init-from` (`tfgen.training.init_from`).
"""

HELP = """\
Manage the published versions of a model base path (saved_models/NAME or any path;
a bare NAME means saved_models/NAME). TF Serving and `tfgen serve` serve the newest
version under the default `latest` policy, so --rollback renames the newest version
directory to rolled-back-N (one atomic rename; no server takes it for a version) and
a polling server goes back to the previous version with no failed request. Nothing
is deleted: --restore renames it back, and no later export reuses its number.
"""


def register(subparsers):
    p = subparsers.add_parser("publish", help="list, roll back or restore a model's published versions",
                              description=HELP)
    p.add_argument("model", metavar="NAME | BASE_PATH", help="saved_models/NAME, another base path, or NAME")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list versions and lineage (the default)")
    action.add_argument("--rollback", action="store_true",
                        help="set the newest version aside, so the previous one is served")
    action.add_argument("--restore", nargs="?", type=int, const=-1, metavar="VERSION",
                        help="put a rolled-back version back (default: the newest rolled back)")
    p.set_defaults(func=run)
    return p


def _describe(version_dir):
    """`created, parent vN, figure a -> b` of an export, from its tfgen.json."""
    import json
    import os

    path = os.path.join(version_dir, "assets.extra", "tfgen.json")
    try:
        with open(path) as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return "no tfgen.json"
    parts = [metadata.get("created") or "?"]
    lineage = metadata.get("lineage")
    if lineage:
        held_out = lineage.get("held_out") or {}
        figure = held_out.get("figure")
        parts.append(f"fine-tuned from v{lineage['parent']['version']}")
        if figure and figure in (held_out.get("parent") or {}) and figure in (held_out.get("new") or {}):
            parts.append(f"{held_out.get('split')} {figure} {held_out['parent'][figure]:.4f} -> "
                         f"{held_out['new'][figure]:.4f}")
    return ", ".join(parts)


def run(args):
    from tfgen.publish import rollback
    base_path = rollback.resolve_base_path(args.model)
    if args.rollback:
        moved, served = rollback.rollback(base_path)
        print(f"tfgen publish: rolled back {base_path}: version {moved} set aside as "
              f"{rollback.ROLLED_BACK_PREFIX}{moved}; version {served} is now the newest (served under the latest "
              f"policy). Undo with: tfgen publish {args.model} --restore {moved}")
        return 0
    if args.restore is not None:
        version = rollback.restore(base_path, None if args.restore == -1 else args.restore)
        print(f"tfgen publish: restored version {version} of {base_path}")
        return 0
    versions = rollback.versions(base_path)
    aside = rollback.rolled_back(base_path)
    newest = max(versions) if versions else None
    for version in sorted(set(versions) | set(aside)):
        if version in versions:
            state = "served (newest)" if version == newest else "published"
            print(f"{version:>6}  {state:<15}  {_describe(versions[version])}")
        else:
            print(f"{version:>6}  {'rolled back':<15}  {_describe(aside[version])}")
    if not versions and not aside:
        print(f"tfgen publish: {base_path} holds no version")
    return 0
