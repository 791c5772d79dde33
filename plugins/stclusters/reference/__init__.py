"""Reference data the steps share: the embedded gazetteer, countries and the H3 grid."""
