//! HEXBINX and HEXBINY: the centre of the hexagonal bin (flat-topped hexagons of side 1) that
//! holds a point, as `tableau_hexbinx(x, y)` and `tableau_hexbiny(x, y)`.
//!
//! The centres form two rectangular lattices: (3i, √3·j) and the same shifted by (1.5, √3/2).
//! A point first rounds to the nearest centre of the first lattice; if it lies outside that
//! centre's hexagon (beyond the edge √3·|dx| + |dy| = √3), its bin is the neighbouring centre of
//! the second lattice in the point's direction.

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::ScalarUDF;

use crate::kernel::{Arg, Rows, TableauUdf, done};

/// HEXBINX and HEXBINY.
pub fn udfs() -> Vec<ScalarUDF> {
    use Arg::Float;
    vec![
        TableauUdf::udf("tableau_hexbinx", &[&[Float, Float]], DataType::Float64, hexbinx),
        TableauUdf::udf("tableau_hexbiny", &[&[Float, Float]], DataType::Float64, hexbiny),
    ]
}

/// The centre of the hexagonal bin holding (x, y).
pub fn bin_centre(x: f64, y: f64) -> (f64, f64) {
    let sqrt3 = 3f64.sqrt();
    let (cx, cy) = ((x / 3.0).round() * 3.0, (y / sqrt3).round() * sqrt3);
    let (dx, dy) = (x - cx, y - cy);
    if dy.abs() + sqrt3 * (dx.abs() - 1.0) > 0.0 {
        (cx + 1.5_f64.copysign(dx), cy + (sqrt3 / 2.0).copysign(dy))
    } else {
        (cx, cy)
    }
}

fn hexbinx(rows: &Rows) -> Result<ArrayRef> {
    let out: Float64Array = (0..rows.len)
        .map(|r| Some(bin_centre(rows.float(0, r)?, rows.float(1, r)?).0))
        .collect();
    done(out)
}

fn hexbiny(rows: &Rows) -> Result<ArrayRef> {
    let out: Float64Array = (0..rows.len)
        .map(|r| Some(bin_centre(rows.float(0, r)?, rows.float(1, r)?).1))
        .collect();
    done(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12
    }

    #[test]
    fn points_near_a_centre_stay_in_its_bin() {
        let h = 3f64.sqrt() / 2.0;
        assert!(close(bin_centre(0.0, 0.0), (0.0, 0.0)));
        assert!(close(bin_centre(0.9, 0.0), (0.0, 0.0)));
        assert!(close(bin_centre(0.4, 0.8), (0.0, 0.0)));
        assert!(close(bin_centre(3.2, 2.0 * h - 0.1), (3.0, 2.0 * h)));
    }

    #[test]
    fn points_past_an_edge_move_to_the_shifted_lattice() {
        let h = 3f64.sqrt() / 2.0;
        // (5, 2): nearest first-lattice centre (6, √3) is 1.0 away; (4.5, 3√3/2) is nearer.
        assert!(close(bin_centre(5.0, 2.0), (4.5, 3.0 * h)));
        assert!(close(bin_centre(-1.2, 0.5), (-1.5, h)));
        assert!(close(bin_centre(1.4, -0.7), (1.5, -h)));
    }
}
