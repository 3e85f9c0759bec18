"""stylevault's governance core, in rooms by stage of the data flow: catalogue (the record), pictures,
rules, views, ingest, legal, standing, curation, index, outputs and upkeep; the plugin door (door);
and the faces cli, web and demo. docs/architecture.md maps each DESIGN.md rule to its module."""

__version__ = "0.1.0"
