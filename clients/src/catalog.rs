//! The synthetic retailer: items and nodes, each derived from (seed, index) alone, so the
//! reference data and the update stream agree without sharing state.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Identifier of item `index`.
pub fn item_id(index: u64) -> String {
    format!("sku-{index:08}")
}

/// Kind of fulfilment node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// A shop.
    Store,
    /// A distribution warehouse.
    Warehouse,
    /// An e-commerce fulfilment centre.
    FulfilmentCentre,
}

impl NodeType {
    /// Of node `index`: 1 in 20 is a fulfilment centre, 3 in 20 are warehouses, the rest stores.
    pub fn of(index: u64) -> Self {
        match index % 20 {
            0 => Self::FulfilmentCentre,
            1..=3 => Self::Warehouse,
            _ => Self::Store,
        }
    }

    /// Name in the `node_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Warehouse => "warehouse",
            Self::FulfilmentCentre => "fulfilment_centre",
        }
    }

    /// The system that publishes this node's updates.
    pub fn source(self) -> &'static str {
        match self {
            Self::Store => "pos",
            Self::Warehouse => "wms",
            Self::FulfilmentCentre => "oms",
        }
    }
}

/// Identifier of node `index`, e.g. `store-00042`.
pub fn node_id(index: u64) -> String {
    let prefix = match NodeType::of(index) {
        NodeType::Store => "store",
        NodeType::Warehouse => "wh",
        NodeType::FulfilmentCentre => "fc",
    };
    format!("{prefix}-{index:05}")
}

/// One row of the node dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub node_id: String,
    pub node_type: NodeType,
    pub region: &'static str,
    pub state: &'static str,
    pub city: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

/// (city, state, region, latitude, longitude)
const CITIES: &[(&str, &str, &str, f64, f64)] = &[
    ("Seattle", "WA", "west", 47.61, -122.33),
    ("Portland", "OR", "west", 45.52, -122.68),
    ("San Francisco", "CA", "west", 37.77, -122.42),
    ("Los Angeles", "CA", "west", 34.05, -118.24),
    ("Phoenix", "AZ", "west", 33.45, -112.07),
    ("Denver", "CO", "west", 39.74, -104.99),
    ("Dallas", "TX", "south", 32.78, -96.80),
    ("Houston", "TX", "south", 29.76, -95.37),
    ("Atlanta", "GA", "south", 33.75, -84.39),
    ("Miami", "FL", "south", 25.76, -80.19),
    ("Nashville", "TN", "south", 36.16, -86.78),
    ("Chicago", "IL", "midwest", 41.88, -87.63),
    ("Minneapolis", "MN", "midwest", 44.98, -93.27),
    ("Detroit", "MI", "midwest", 42.33, -83.05),
    ("Columbus", "OH", "midwest", 39.96, -83.00),
    ("Kansas City", "MO", "midwest", 39.10, -94.58),
    ("New York", "NY", "northeast", 40.71, -74.01),
    ("Boston", "MA", "northeast", 42.36, -71.06),
    ("Philadelphia", "PA", "northeast", 39.95, -75.17),
    ("Pittsburgh", "PA", "northeast", 40.44, -79.99),
];

/// (department, categories)
const DEPARTMENTS: &[(&str, &[&str])] = &[
    ("grocery", &["produce", "dairy", "bakery", "pantry", "frozen"]),
    ("electronics", &["phones", "laptops", "audio", "tv", "gaming"]),
    ("home", &["kitchen", "bedding", "furniture", "decor"]),
    ("apparel", &["women", "men", "kids", "shoes"]),
    ("health", &["pharmacy", "beauty", "personal care"]),
    ("toys", &["outdoor", "puzzles", "dolls", "building sets"]),
];

const BRANDS: &[&str] = &[
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Hooli",
];

/// A generator for one entity: independent of every other index.
fn rng_for(seed: u64, kind: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(kind);
    rng
}

/// Node `index` of the dataset with `seed`.
pub fn node(seed: u64, index: u64) -> Node {
    let mut rng = rng_for(seed, 1, index);
    let (city, state, region, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
    Node {
        node_id: node_id(index),
        node_type: NodeType::of(index),
        region,
        state,
        city,
        latitude: lat + rng.random_range(-0.2..0.2),
        longitude: lon + rng.random_range(-0.2..0.2),
    }
}

/// One row of the item catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub item_id: String,
    pub name: String,
    pub department: &'static str,
    pub category: &'static str,
    pub brand: &'static str,
    pub price: f64,
}

/// Item `index` of the dataset with `seed`.
pub fn item(seed: u64, index: u64) -> Item {
    let mut rng = rng_for(seed, 2, index);
    let (department, categories) = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
    let category = categories[rng.random_range(0..categories.len())];
    let brand = BRANDS[rng.random_range(0..BRANDS.len())];
    let cents: u32 = rng.random_range(99..50_000);
    Item {
        item_id: item_id(index),
        name: format!("{brand} {category} #{index}"),
        department,
        category,
        brand,
        price: f64::from(cents) / 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_depend_on_seed_and_index_only() {
        assert_eq!(node(1, 7), node(1, 7));
        assert_eq!(item(1, 7), item(1, 7));
        assert_ne!(item(1, 7), item(2, 7));
        assert_ne!(item(1, 7).item_id, item(1, 8).item_id);
    }

    #[test]
    fn node_mix_and_ids() {
        let types: Vec<_> = (0..20).map(NodeType::of).collect();
        assert_eq!(types.iter().filter(|t| **t == NodeType::FulfilmentCentre).count(), 1);
        assert_eq!(types.iter().filter(|t| **t == NodeType::Warehouse).count(), 3);
        assert_eq!(node_id(0), "fc-00000");
        assert_eq!(node_id(5), "store-00005");
        let n = node(9, 3);
        assert!((-90.0..=90.0).contains(&n.latitude) && (-180.0..=180.0).contains(&n.longitude));
    }
}
