//! Objects, as with mpi4py's `comm.send(obj, dest, tag)`: a struct, a map, a string, a
//! vector and an enum go from rank 0 to rank 1 with tag 11; rank 1 checks each.
//!
//! ```text
//! shmrun -n 2 --example send_object
//! ```

use std::collections::HashMap;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
struct Data {
    a: i32,
    b: f64,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
enum Event {
    Start { at: u64 },
    Samples(Vec<f32>),
    Stop,
}

fn expected_map() -> HashMap<String, u32> {
    [("apples", 3), ("pears", 5)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[allow(clippy::approx_constant)] // the classic example sends 3.14
fn main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    if world.size() < 2 {
        eprintln!("run with at least 2 ranks: shmrun -n 2 --example send_object");
        std::process::exit(2);
    }
    let events = vec![
        Event::Start { at: 1 },
        Event::Samples(vec![0.5, 1.5]),
        Event::Stop,
    ];
    match world.rank() {
        0 => {
            world.send(&Data { a: 7, b: 3.14 }, 1, 11)?;
            world.send(&expected_map(), 1, 11)?;
            world.send(&"hello from rank 0".to_string(), 1, 11)?;
            world.send(&vec![1.0f64, 2.0, 3.0], 1, 11)?;
            world.send(&events, 1, 11)?;
        }
        1 => {
            let data: Data = world.recv(0, 11)?;
            assert_eq!(data, Data { a: 7, b: 3.14 });
            let map: HashMap<String, u32> = world.recv(0, 11)?;
            assert_eq!(map, expected_map());
            let text: String = world.recv(0, 11)?;
            assert_eq!(text, "hello from rank 0");
            // Zero-copy access: read the archive in place, without deserializing.
            let v = world.recv_archived::<Vec<f64>>(0, 11)?;
            assert_eq!(v.iter().map(|x| x.to_native()).sum::<f64>(), 6.0);
            let got: Vec<Event> = world.recv(0, 11)?;
            assert_eq!(got, events);
            println!(
                "rank 1 received {data:?}, {map:?}, {text:?}, {} floats and {got:?}",
                v.len()
            );
        }
        _ => {}
    }
    Ok(())
}
