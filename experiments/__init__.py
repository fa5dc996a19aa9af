"""Everything in engage with side effects: specs, store, engine, service, simulation, tracking."""
