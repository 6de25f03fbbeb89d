"""Pure AnnData functions: validate, QC, normalise, HVG, balance, split, metabolomics
tables, and the synthetic data simulators."""

from omicsgen.preprocessing.expression import (
    balance_by_cell_type,
    detect_expression_scale,
    filter_cells_and_genes,
    hold_out_condition,
    locate_counts,
    normalise_expression,
    select_highly_variable_genes,
    split_train_validation,
    subsample_cells,
)
from omicsgen.preprocessing.metabolomics import (
    detect_intensity_scale,
    filter_features,
    impute_half_minimum,
    metabolomics_to_anndata,
    restore_original_scale,
    scale_features,
)
from omicsgen.preprocessing.simulate import (
    simulate_metabolomics,
    simulate_scrna_counts,
    write_metabolomics_csv,
    write_scrna_h5ad,
)
from omicsgen.preprocessing.validate import InputValidationError, validate_single_cell

__all__ = [
    "InputValidationError",
    "balance_by_cell_type",
    "detect_expression_scale",
    "detect_intensity_scale",
    "filter_cells_and_genes",
    "filter_features",
    "hold_out_condition",
    "impute_half_minimum",
    "locate_counts",
    "metabolomics_to_anndata",
    "normalise_expression",
    "restore_original_scale",
    "scale_features",
    "select_highly_variable_genes",
    "simulate_metabolomics",
    "simulate_scrna_counts",
    "split_train_validation",
    "subsample_cells",
    "validate_single_cell",
    "write_metabolomics_csv",
    "write_scrna_h5ad",
]
