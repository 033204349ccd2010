"""Training: the config, gensim Word2Vec with hierarchical softmax, and the heads."""
