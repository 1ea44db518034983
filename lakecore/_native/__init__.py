"""Compiled kernels (Cython). Array in, array out; validation happens in the Python layer."""
