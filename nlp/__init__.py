"""Chinese text processing: segmentation, classification (relevance, topic, sentiment), keywords."""
