"""unsource core: settings, models, storage, pipeline, scheduler, CLI."""
