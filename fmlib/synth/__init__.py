"""Stage 1, the synthesizer: parameters, operator graphs, patches, the renderer
(:mod:`fmlib.synth.engine`) and the DX7 sysex bridge. Imports only the base."""
