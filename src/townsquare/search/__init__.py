"""Search: the engine (lexical + semantic, fused and ranked), its ranking, and the tantivy index
beside the embedded store. The query language is ``townsquare.query``; the store compiles it."""
