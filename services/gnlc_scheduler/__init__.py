"""Scheduler service: owns deadlines and reminder plans, emits events onto Kafka."""
