"""The import path Cortex predictors used for the runtime's helpers (`cortex_internal.lib.log`)."""
