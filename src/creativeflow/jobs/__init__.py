"""Durable jobs: the table, the kinds modules register, the in-process and Celery runners."""
