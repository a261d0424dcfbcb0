"""What AGT-NO is compared against: WDCNN, a plain CNN from the bearing-diagnosis literature trained by the same
engine, and the envelope-spectrum rule, an analyst's kinematic diagnosis that needs no training."""
