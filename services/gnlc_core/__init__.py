"""What every GNLC Notify service shares: event contract, settings, Kafka wiring, city
directory, logs and the service runner."""
