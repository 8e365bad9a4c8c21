"""Personalized ads: taxonomy, sensitive categories, profiles, campaigns, brand safety, serving, creatives."""
