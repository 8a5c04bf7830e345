"""The long-running service: schedule, leadership among replicas, health, graceful stop."""
